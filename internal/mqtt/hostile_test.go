package mqtt

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
)

// listen subscribes an outsider to filter and returns the payloads it
// receives, in order.
func (r *rig) listen(filter string) func() []string {
	r.t.Helper()
	var mu sync.Mutex
	var got []string
	c := r.outsider()
	t := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		got = append(got, m.Topic()+"="+string(m.Payload()))
		mu.Unlock()
	})
	if !t.WaitTimeout(20*time.Second) || t.Error() != nil {
		r.t.Fatalf("outsider subscribe: %v", t.Error())
	}
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

// TestHostilePublishOutsideGrant: a topic no publish filter covers is
// denied (abi.Denied), audited, and never reaches the broker; a plugin
// without [mqtt] is denied too.
func TestHostilePublishOutsideGrant(t *testing.T) {
	r := newRig(t, rigOptions{})
	got := r.listen("#")
	pub := r.plugin("pub", pubGrant, "")
	bare := r.plugin("bare", "", "")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"devices/a/config", r.publish(pub, "devices/a/config", "leak", 0, false)},
		{"devices/a/status/x", r.publish(pub, "devices/a/status/x", "leak", 0, false)},
		{"$SYS/broker/x", r.publish(pub, "$SYS/broker/x", "leak", 0, false)},
		{"no grant", r.publish(bare, "devices/a/status", "leak", 0, false)},
	} {
		var d *gate.Denial
		if !errors.As(tc.err, &d) || errnoOf(tc.err) != abi.Denied {
			t.Errorf("%s: err = %v, want a denial", tc.name, tc.err)
		}
	}
	if err := r.publish(pub, "devices/a/status", "fence", 1, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fence message", func() bool { return contains(got(), "fence") })
	if contains(got(), "leak") {
		t.Errorf("a denied publish reached the broker: %q", got())
	}
	if n := r.logs.Count("plugin=pub", "publish hub:devices/a/config", "deny"); n == 0 {
		t.Errorf("denial not audited:\n%s", strings.Join(r.logs.Lines(), "\n"))
	}
}

// TestHostileWildcardOrNULInPublishTopic: '+' and '#' are filter syntax,
// not topics. Without the check, "devices/+/status" is "covered" by the
// grant's identical filter and would be sent; a NUL or a topic over
// max_topic is refused too. Each is abi.Invalid and reaches nothing.
func TestHostileWildcardOrNULInPublishTopic(t *testing.T) {
	r := newRig(t, rigOptions{mqtt: "max_topic = 64"})
	got := r.listen("#")
	pub := r.plugin("pub", "[mqtt]\nbroker = \"hub\"\npublish = [\"devices/+/status\", \"#\"]\n", "")
	for _, topic := range []string{"devices/+/status", "devices/#", "#", "+", "devices/a\x00/status", "devices/" + strings.Repeat("x", 64), "\xff\xfe"} {
		err := r.publish(pub, topic, "leak", 0, false)
		if errnoOf(err) != abi.Invalid {
			t.Errorf("publish to %q: %v (errno %v), want invalid", topic, err, errnoOf(err))
		}
	}
	if err := r.publish(pub, "devices/a/status", "fence", 1, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fence message", func() bool { return contains(got(), "fence") })
	if contains(got(), "leak") {
		t.Errorf("a refused topic reached the broker: %q", got())
	}
}

// TestHostileSubscriptionWiderThanGrant: a [[trigger.mqtt]] filter that
// the grant's subscribe filters do not cover ('#' below a grant of "a/+",
// a sibling, any filter without a grant) is refused at load, audited, and
// delivers nothing, while a covered one works.
func TestHostileSubscriptionWiderThanGrant(t *testing.T) {
	r := newRig(t, rigOptions{})
	grant := "[mqtt]\nbroker = \"hub\"\nsubscribe = [\"a/+\"]\n"
	r.plugin("wide", grant, "[[trigger.mqtt]]\nfilter = \"a/#\"\n[[trigger.mqtt]]\nfilter = \"+/b\"\n[[trigger.mqtt]]\nfilter = \"#\"\n")
	r.plugin("nogrant", "", "[[trigger.mqtt]]\nfilter = \"a/b\"\n")
	r.plugin("ok", grant, "[[trigger.mqtt]]\nfilter = \"a/+\"\n")
	if w := r.c.wanted("hub"); len(w) != 1 {
		t.Errorf("the broker is asked for %v, want only a/+", w)
	}
	out := r.outsider()
	for _, m := range []string{"a/b/c=deep", "x/b=sibling", "a/b=fence"} {
		tp, p, _ := strings.Cut(m, "=")
		out.Publish(tp, 1, false, p).WaitTimeout(10 * time.Second)
	}
	r.waitEvent("ok", "fence")
	for _, p := range []string{"wide", "nogrant"} {
		if n := len(r.got(p)); n != 0 {
			t.Errorf("%s got %d events through refused filters", p, n)
		}
	}
	for _, op := range []string{"subscribe hub:a/#", "subscribe hub:+/b", "subscribe hub:#", "subscribe a/b"} {
		if r.logs.Count("audit", op, "deny") == 0 {
			t.Errorf("%s: no audited denial:\n%s", op, strings.Join(r.logs.Lines(), "\n"))
		}
	}
}

// TestHostileHugePayload: a payload over max_payload is denied before it
// is sent; one that arrives from the broker is dropped and logged, never
// handed to a plugin.
func TestHostileHugePayload(t *testing.T) {
	r := newRig(t, rigOptions{mqtt: "max_payload = \"1KiB\""})
	pub := r.plugin("pub", pubGrant, "")
	r.plugin("sub", subGrant, subTrigger)
	err := r.publish(pub, "devices/a/status", strings.Repeat("x", 1025), 0, false)
	if errnoOf(err) != abi.Denied || !strings.Contains(err.Error(), "max_payload") {
		t.Errorf("huge publish: %v", err)
	}
	out := r.outsider()
	out.Publish("devices/b/status", 1, false, strings.Repeat("y", 4096)).WaitTimeout(10 * time.Second)
	out.Publish("devices/b/status", 1, false, "fence").WaitTimeout(10 * time.Second)
	r.waitEvent("sub", "fence")
	if n := len(r.got("sub")); n != 1 {
		t.Errorf("sub got %d events, want only the fence", n)
	}
	if r.logs.Count("payload over mqtt.max_payload", "bytes=4096") != 1 {
		t.Errorf("the dropped message is not logged:\n%s", strings.Join(r.logs.Lines(), "\n"))
	}
}

// TestHostilePublishFlood: past its burst a plugin's publishes are refused
// with abi.Busy, each audited as a denial (so that the gate's throttle
// applies), and only the allowed ones reach the broker.
func TestHostilePublishFlood(t *testing.T) {
	r := newRig(t, rigOptions{mqtt: "publish_rate = 1\npublish_burst = 5"})
	got := r.listen("devices/#")
	pub := r.plugin("pub", pubGrant, "")
	ok, busy := 0, 0
	for i := range 200 {
		err := r.publish(pub, "devices/a/status", fmt.Sprint("m", i), 0, false)
		switch errnoOf(err) {
		case abi.OK:
			ok++
		case abi.Busy:
			busy++
		default:
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	// The bucket holds 5 and refills one a second: a loop of 200 calls
	// that takes less than 10 seconds gets at most 15.
	if ok < 5 || ok > 15 || ok+busy != 200 {
		t.Errorf("%d allowed, %d busy, want 5..15 allowed", ok, busy)
	}
	waitFor(t, "the allowed messages", func() bool { return len(got()) >= ok })
	time.Sleep(100 * time.Millisecond)
	if n := len(got()); n != ok {
		t.Errorf("the broker saw %d messages, %d were allowed", n, ok)
	}
	if r.logs.Count("audit", "publish hub:devices/a/status", "over the publish rate") == 0 {
		t.Errorf("rate denials not audited:\n%s", strings.Join(r.logs.Lines(), "\n"))
	}
}

// TestHostileBrokerPasswordStaysHidden: the broker's password is a
// host-held secret: the host connects with it, but it is in no event, no
// error a plugin reads, no log or audit line, even across a reconnection;
// and a password written into the broker URL is refused, since paho's
// errors would carry the URL.
func TestHostileBrokerPasswordStaysHidden(t *testing.T) {
	const password = "s3cr3t-broker-pw"
	r := newRig(t, rigOptions{user: "dev", password: password,
		env:    map[string]string{"HUB_PW": password, "TEST_MQTT_USER": "dev", "TEST_MQTT_PASSWORD": password},
		broker: "username = \"dev\"\npassword_secret = \"hub\"",
		http:   "[http.secrets]\nhub = { env = \"HUB_PW\" }\n"})
	pub := r.plugin("pub", pubGrant, "")
	r.plugin("sub", subGrant, subTrigger)
	if err := r.publish(pub, "devices/a/status", "hello", 1, false); err != nil {
		t.Fatal(err)
	}
	r.waitEvent("sub", "hello")
	if err := r.mq.Restart(); err != nil {
		t.Fatal(err)
	}
	r.waitConnected()
	var errs []string
	for _, topic := range []string{"devices/a/status", "nope", "devices/+/x"} {
		if err := r.publish(pub, topic, "x", 1, false); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, e := range r.got("sub") {
		for _, f := range e {
			errs = append(errs, string(f.Value))
		}
	}
	for _, s := range append(errs, r.logs.Lines()...) {
		if strings.Contains(s, password) {
			t.Errorf("the password leaked: %q", s)
		}
	}
	_, err := manifest.ParseRuntime("runtime.toml", []byte("[[mqtt.broker]]\nname = \"x\"\nurl = \"tcp://dev:"+password+"@127.0.0.1:1883\"\n"),
		map[string]manifest.SectionFunc{Name: New(Options{}).DecodeConfig})
	if err == nil || !strings.Contains(err.Error(), "password_secret") {
		t.Errorf("a password in the URL is not refused: %v", err)
	}
}
