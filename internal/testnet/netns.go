package testnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Namespaces made by this package are named "mtuscope-PID-SEQ-ROLE": PID is
// the process that made them, so a later run can tell a namespace left by a
// killed process from one of a run still going on.
const nsPrefix = "mtuscope-"

var nsSeq atomic.Int64

// newNetName returns the name prefix for one Net: "mtuscope-PID-SEQ-".
func newNetName() string {
	return fmt.Sprintf("%s%d-%d-", nsPrefix, os.Getpid(), nsSeq.Add(1))
}

// ownerPID parses the PID out of a namespace name of this package.
func ownerPID(ns string) (int, bool) {
	rest, ok := strings.CutPrefix(ns, nsPrefix)
	if !ok {
		return 0, false
	}
	pid, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(pid)
	return n, err == nil && n > 0
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// listNamespaces returns the names of all named network namespaces.
func listNamespaces() ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// deleteNamespace kills every process inside ns, waits a moment for them to
// be gone, then deletes it.
func deleteNamespace(ns string) error {
	for try := 0; try < 40; try++ {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		var others int
		for _, f := range strings.Fields(string(out)) {
			// This process shows up while one of its threads is inside (Do).
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
				others++
			}
		}
		if others == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var err error
	// A process being killed may still hold the namespace for a moment.
	for try := 0; try < 20; try++ {
		var msg []byte
		msg, err = exec.Command("ip", "netns", "del", ns).CombinedOutput()
		if err == nil {
			return nil
		}
		err = fmt.Errorf("ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(msg))
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

var (
	startOnce sync.Once
	startErr  error
)

// processStart runs once per process before the first Net: it removes what
// killed runs left behind and starts the reaper that cleans up after this one.
func processStart() error {
	startOnce.Do(func() {
		removeStale()
		startErr = startReaper()
	})
	return startErr
}

// removeStale deletes this package's namespaces whose owning process is gone,
// and the binaries such processes built.
func removeStale() {
	names, _ := listNamespaces()
	for _, ns := range names {
		if pid, ok := ownerPID(ns); ok && !processAlive(pid) {
			deleteNamespace(ns)
		}
	}
	etc, _ := os.ReadDir(etcNetns)
	for _, d := range etc {
		if pid, ok := ownerPID(d.Name()); ok && !processAlive(pid) {
			os.RemoveAll(etcNetns + "/" + d.Name())
		}
	}
	dirs, _ := os.ReadDir(os.TempDir())
	for _, d := range dirs {
		if rest, ok := strings.CutPrefix(d.Name(), binDirPrefix); ok {
			if pid, err := strconv.Atoi(rest); err == nil && !processAlive(pid) {
				os.RemoveAll(os.TempDir() + "/" + d.Name())
			}
		}
	}
}

// reaperScript waits for the test process ($1) to end, however it ends (a
// panic in a goroutine, the test binary's timeout, SIGKILL), then kills the
// processes left in its namespaces, deletes them and its built binary ($2).
const reaperScript = `
while kill -0 "$1" 2>/dev/null; do sleep 1; done
for ns in $(ls /run/netns 2>/dev/null); do
  case "$ns" in mtuscope-"$1"-*)
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null || { sleep 0.2; ip netns del "$ns"; }
  esac
done
rm -rf "$2" /etc/netns/mtuscope-"$1"-*
`

func startReaper() error {
	cmd := exec.Command("sh", "-c", reaperScript, "mtuscope-reaper",
		strconv.Itoa(os.Getpid()), binDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testnet: start reaper: %w", err)
	}
	go cmd.Wait() // never returns before this process ends; avoids a zombie if it does
	return nil
}

// ipBatch runs "ip [-n ns] -batch -" with the given lines.
func ipBatch(ctx context.Context, ns string, lines []string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s\nbatch:\n%s", strings.Join(args, " "), err,
			bytes.TrimSpace(out), strings.Join(lines, "\n"))
	}
	return nil
}
