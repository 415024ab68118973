package commands

import (
	"reflect"
	"testing"

	"github.com/fedora-infra/kojibot/bot/reply"
)

// progressRecorder is an output that tells progress from other replies.
type progressRecorder struct {
	sent, progress []string
}

func (p *progressRecorder) Send(m reply.Message) { p.sent = append(p.sent, m.String()) }

func (p *progressRecorder) SendProgress(jobID string, m reply.Message) {
	p.progress = append(p.progress, jobID+" "+m.String())
}

// TestJobOutputProgress: a job's replies reach a ProgressOutput as the
// job's progress, and any other output through Send; the job's log keeps
// them either way.
func TestJobOutputProgress(t *testing.T) {
	p := &progressRecorder{}
	j := &Job{ID: "7"}
	out := jobOutput{out: p, job: j}
	out.Send(reply.Text(Info, "stopped kojid"))
	out.Send(reply.Text(Error, "deleting x failed\nOperation not permitted"))
	if want := []string{"7 stopped kojid", "7 error: deleting x failed\nOperation not permitted"}; !reflect.DeepEqual(p.progress, want) || len(p.sent) != 0 {
		t.Errorf("progress %q, sent %q; want progress %q and nothing sent", p.progress, p.sent, want)
	}
	if want := []string{"stopped kojid", "error: deleting x failed", "Operation not permitted"}; !reflect.DeepEqual(j.Log(), want) {
		t.Errorf("log %q, want %q", j.Log(), want)
	}
	r := &recorder{}
	jobOutput{out: r, job: &Job{ID: "8"}}.Send(reply.Text(Info, "plain"))
	if got := r.all(); got != "plain" {
		t.Errorf("plain output got %q, want the line through Send", got)
	}
}
