package udev

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/testenv"
)

// TestNetlinkOverflowCounted makes the kernel's uevent socket overflow on
// purpose and checks that the loss is counted, exactly: a receive queue of
// 4 KiB (receive_buffer, the smallest allowed), a plugin whose delivery
// blocks (so the reader stops reading), and 400 real kernel "change"
// uevents of a loop device the test attached (written to its sysfs uevent
// file). The source must count at least one overflow, and the events lost
// (from SEQNUM gaps) must cover every one of ours that was not read, and be
// no more than the kernel numbered meanwhile. (Alone on a machine the
// figure is exact: 399 lost and 1 read of 400.)
func TestNetlinkOverflowCounted(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach a loop device and make its kernel uevents")
	dir := t.TempDir()
	img := tl.MakeImage(t, dir, "burst.img", nil)
	dev := tl.Attach(t, img, 0)
	trigger := fmt.Sprintf("/sys/block/%s/uevent", dev)

	u := New()
	cfg := DefaultConfig()
	cfg.Source, cfg.Coldplug, cfg.Probe, cfg.ReceiveBuffer = "kernel", false, false, 4<<10
	log, logger := testenv.NewLog(t)
	if err := u.Provision(context.Background(), capability.Env{Config: &cfg, Logger: logger.With("capability", "udev")}); err != nil {
		t.Fatal(err)
	}
	u.Subscribe("burst", Rules{{Actions: []string{"change"}, Subsystem: "block", Kernel: mustGlob(dev)}})
	release := make(chan struct{})
	var ours atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); u.Close() }()
	deliver := func(plugin string, ev capability.Event) bool {
		<-release // stall the reader: the kernel queues, then overflows
		ours.Add(1)
		return true
	}
	if err := u.Start(ctx, deliver); err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	_, ok := u.src.(*netlinkSource)
	u.mu.Unlock()
	if !ok {
		t.Fatal("the source is not the kernel's netlink socket")
	}
	const sent = 400
	seqBefore := kernelSeqnum(t)
	for range sent {
		if err := os.WriteFile(trigger, []byte("change"), 0o200); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	// Wait until every one of ours is read or counted lost (liveness).
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := u.Stats()
		if st.Overflows > 0 && uint64(ours.Load())+st.Lost >= sent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d uevents: %+v, %d of ours delivered\n%s", sent, st, ours.Load(), log.Lines())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := u.Stats()
	// Every uevent the kernel numbered since the burst began, ours and
	// other processes' (the machine is shared); the source may have
	// counted some of the latter lost too.
	span := kernelSeqnum(t) - seqBefore
	t.Logf("%d change uevents into a %d-byte receive queue: %d overflows, %d lost by SEQNUM, %d of ours delivered, %d read in all; the kernel numbered %d",
		sent, st.ReceiveBuffer, st.Overflows, st.Lost, ours.Load(), st.Received, span)
	if st.Overflows == 0 {
		t.Fatal("no overflow counted")
	}
	if missing := uint64(sent - ours.Load()); st.Lost < missing {
		t.Errorf("lost %d by SEQNUM, but %d of ours never arrived", st.Lost, missing)
	}
	if st.Lost > span {
		t.Errorf("lost %d, more than the %d uevents the kernel numbered meanwhile", st.Lost, span)
	}
	if n := log.Count("uevents lost to the netlink receive queue's overflow"); n == 0 {
		t.Errorf("the loss was not logged:\n%s", log.Lines())
	}
	if s := u.SourceLosses(); s.Overflows != st.Overflows || s.Lost != st.Lost || s.Source != "udev" {
		t.Errorf("SourceLosses %+v differs from Stats %+v", s, st)
	}
}

// kernelSeqnum is the kernel's last uevent SEQNUM.
func kernelSeqnum(t *testing.T) uint64 {
	b, err := os.ReadFile("/sys/kernel/uevent_seqnum")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(string(b[:len(b)-1]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
