package commands

import "strings"

// JobLink is the URL of job j's page under http.public_url, named by the
// job's random token (never its short id, which is easy to guess). It is
// "" when there is no public_url, no token, or when the job was started in
// a private message: such a job is never served over HTTP.
func (d *Dispatcher) JobLink(j *Job) string {
	u := d.deps.Config.HTTP.PublicURL
	if j == nil || u == "" || j.Token == "" || j.Place == "" {
		return ""
	}
	return strings.TrimRight(u, "/") + "/jobs/" + j.Token
}
