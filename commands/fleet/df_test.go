package fleet

import (
	"math"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

const dfHeader = "Filesystem         1-blocks        Used   Available Capacity Mounted on\n"

func TestParseDF(t *testing.T) {
	for _, c := range []struct {
		name           string
		stdout, stderr string
		exit           int
		paths          []string
		want           []Usage
		wantErr        string // substring; "" for none
	}{
		{
			name:   "two mounts",
			stdout: dfHeader + "tmpfs              8388608     6291456     2097152      75% /var/lib/mock\n/dev/vda1       270553174016 13264437248 84528857088      14% /\n",
			paths:  []string{"/var/lib/mock/x", "/"},
			want: []Usage{
				{Path: "/var/lib/mock/x", Mount: "/var/lib/mock", Filesystem: "tmpfs", Size: 8388608, Used: 6291456, Avail: 2097152, Percent: 75},
				{Path: "/", Mount: "/", Filesystem: "/dev/vda1", Size: 270553174016, Used: 13264437248, Avail: 84528857088, Percent: 13.56375},
			},
		},
		{
			name:   "spaces in names, NFS source",
			stdout: dfHeader + "ntap-fedora1:/vol/fedora scratch 1000 900 100 90% /mnt/ntap fedora1/scratch\n",
			paths:  []string{"/mnt/ntap fedora1/scratch"},
			want: []Usage{{Path: "/mnt/ntap fedora1/scratch", Mount: "/mnt/ntap fedora1/scratch", Filesystem: "ntap-fedora1:/vol/fedora scratch",
				Size: 1000, Used: 900, Avail: 100, Percent: 90}},
		},
		{
			name:   "reserved blocks: percent of what users can have",
			stdout: dfHeader + "/dev/sdb1 1000 900 50 95% /pub\n",
			paths:  []string{"/pub"},
			want:   []Usage{{Path: "/pub", Mount: "/pub", Filesystem: "/dev/sdb1", Size: 1000, Used: 900, Avail: 50, Percent: 94.73684}},
		},
		{
			name:   "empty filesystem",
			stdout: dfHeader + "none 0 0 0 - /proc\n",
			paths:  []string{"/proc"},
			want:   []Usage{{Path: "/proc", Mount: "/proc", Filesystem: "none"}},
		},
		{
			name:    "a missing path",
			stdout:  dfHeader + "tmpfs 100 10 90 10% /var/lib/mock\n",
			stderr:  "df: /mnt/koji: No such file or directory\n",
			exit:    1,
			paths:   []string{"/mnt/koji", "/var/lib/mock"},
			want:    []Usage{{Path: "/var/lib/mock", Mount: "/var/lib/mock", Filesystem: "tmpfs", Size: 100, Used: 10, Avail: 90, Percent: 10}},
			wantErr: "cannot read /mnt/koji",
		},
		{
			name:    "a missing path, quoted by df",
			stdout:  dfHeader,
			stderr:  "df: \"/tmp/it's\": No such file or directory\n",
			exit:    1,
			paths:   []string{"/tmp/it's"},
			wantErr: "cannot read /tmp/it's",
		},
		{
			name:    "lines do not match paths",
			stdout:  dfHeader + "tmpfs 100 10 90 10% /a\n",
			paths:   []string{"/a", "/b"},
			wantErr: "1 lines for 2 paths",
		},
		{
			name:    "unattributable failure",
			stdout:  "",
			stderr:  "df: cannot read table of mounted file systems\n",
			exit:    1,
			paths:   []string{"/a"},
			wantErr: "cannot read table",
		},
		{
			name:    "garbage",
			stdout:  dfHeader + "tmpfs lots little 10% /a\n",
			paths:   []string{"/a"},
			wantErr: "unexpected line",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseDF(c.stdout, c.stderr, c.exit, c.paths)
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}
			for i := range got {
				if i < len(c.want) && math.Abs(got[i].Percent-c.want[i].Percent) < 1e-4 {
					got[i].Percent = c.want[i].Percent
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestParseDFReal parses this machine's own df and checks it against statfs.
func TestParseDFReal(t *testing.T) {
	paths := []string{"/", "/proc", "/tmp"}
	cmd := exec.Command("df", append([]string{"-P", "-B1", "--"}, paths...)...)
	cmd.Env = []string{"LC_ALL=C"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("df: %v", err)
	}
	got, err := parseDF(string(out), "", 0, paths)
	if err != nil {
		t.Fatalf("parseDF(%q): %v", out, err)
	}
	if got[0].Mount != "/" || got[0].Path != "/" || got[1].Mount != "/proc" {
		t.Errorf("got %+v", got)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/", &st); err != nil {
		t.Fatal(err)
	}
	if size := st.Blocks * uint64(st.Bsize); got[0].Size != size {
		t.Errorf("size of / = %d, statfs says %d", got[0].Size, size)
	}
}
