package web

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The metric names, all prefixed "kojibot_".
const (
	MetricCommands        = "kojibot_commands_total"
	MetricCommandDuration = "kojibot_command_duration_seconds"
	MetricIRCConnected    = "kojibot_irc_connected"
	MetricSSHDials        = "kojibot_ssh_dials_total"
	MetricSSHDialDuration = "kojibot_ssh_dial_duration_seconds"
	MetricChecks          = "kojibot_watch_checks_total"
	MetricFiring          = "kojibot_watch_firing"
	MetricDiskFallback    = "kojibot_disk_check_fallback_total"
)

// Metrics are kojibot's Prometheus metrics. Its methods are safe for
// concurrent use, and do nothing on a nil *Metrics, so that a caller
// without metrics need not check.
type Metrics struct {
	commands   *prometheus.CounterVec
	commandDur *prometheus.HistogramVec
	irc        prometheus.Gauge
	dials      *prometheus.CounterVec
	dialDur    prometheus.Histogram
	checks     *prometheus.CounterVec
	firing     prometheus.Gauge
	fallbacks  *prometheus.CounterVec
}

// NewMetrics makes kojibot's metrics and registers them with reg (none
// when reg is nil). Like prometheus.MustRegister it panics when reg already
// holds metrics of these names: make one Metrics per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCommands,
			Help: "Commands run, by command and result (ok, error, denied, usage, ...).",
		}, []string{"command", "result"}),
		commandDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricCommandDuration,
			Help:    "How long commands took to answer, by command.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}, []string{"command"}),
		irc: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricIRCConnected,
			Help: "1 when the bot is registered on the IRC network, else 0.",
		}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricSSHDials,
			Help: "SSH connections opened, by host and result (ok, error).",
		}, []string{"host", "result"}),
		dialDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricSSHDialDuration,
			Help:    "How long opening an SSH connection took, handshake included.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricChecks,
			Help: "Watcher check runs, by kind (disk, shared, stale, connections) and result (ok, failing, error).",
		}, []string{"kind", "result"}),
		firing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricFiring,
			Help: "Watcher checks firing now.",
		}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDiskFallback,
			Help: "Disk checks that ran df over SSH because the host offers no statvfs over SFTP, by host and reason (no-sftp-subsystem, no-statvfs-extension, session-refused).",
		}, []string{"host", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.commands, m.commandDur, m.irc, m.dials, m.dialDur, m.checks, m.firing, m.fallbacks)
	}
	return m
}

// CommandDone counts a finished command with its result and records how
// long it took.
func (m *Metrics) CommandDone(command, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(command, result).Inc()
	m.commandDur.WithLabelValues(command).Observe(d.Seconds())
}

// SetIRCConnected records whether the bot is on the IRC network.
func (m *Metrics) SetIRCConnected(connected bool) {
	if m == nil {
		return
	}
	if connected {
		m.irc.Set(1)
	} else {
		m.irc.Set(0)
	}
}

// SSHDial counts an SSH connection attempt to host (ok when err is nil)
// and records how long it took.
func (m *Metrics) SSHDial(host string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.dials.WithLabelValues(host, result).Inc()
	m.dialDur.Observe(d.Seconds())
}

// CheckRan counts a watcher check run of kind with its result.
func (m *Metrics) CheckRan(kind, result string) {
	if m == nil {
		return
	}
	m.checks.WithLabelValues(kind, result).Inc()
}

// SetFiring records how many watcher checks fire.
func (m *Metrics) SetFiring(n int) {
	if m == nil {
		return
	}
	m.firing.Set(float64(n))
}

// DiskFallback counts a disk check of host that ran df instead of statvfs
// over SFTP, and why.
func (m *Metrics) DiskFallback(host, reason string) {
	if m == nil {
		return
	}
	m.fallbacks.WithLabelValues(host, reason).Inc()
}
