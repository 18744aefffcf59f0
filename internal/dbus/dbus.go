// Package dbus is the "dbus" capability: method calls, properties and
// signals on the host's system bus, each checked against the plugin's
// [[dbus.call]] and [[dbus.property]] rules. It owns one connection, which it
// redials with backoff, and demultiplexes every signal in one place.
package dbus

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	godbus "github.com/godbus/dbus/v5"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/simdevice/dbussim"
)

// DBus is the capability. Create it with New.
type DBus struct {
	opts Options

	// Set by Provision, read-only after.
	cfg  Config
	log  *slog.Logger
	sim  *dbussim.Run
	addr string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the connection state and the subscriptions. It is never held
	// across a bus round trip: godbus's reader goroutine runs our
	// interceptor, and a round trip needs that goroutine.
	mu      sync.Mutex
	conn    *godbus.Conn
	flight  *inflight // conn's calls awaiting a reply
	lastErr error
	gen     uint64                 // connection generation
	rules   map[string]SignalRules // by plugin
	owners  map[string]string      // well-known sender -> unique owner
	deliver capability.Deliver
	changed chan struct{} // signalled when rules change, for the sync loop

	// mine marks our outgoing calls for the outgoing interceptor, which
	// hands each to its connection's inflight under its serial.
	mine sync.Map // *godbus.Message -> *replySlot

	firstTry chan struct{} // closed after the first dial, so that load-time checks see the bus

	// The reader goroutine matches each signal and queues it for the
	// plugins it matched; the demultiplexer encodes and delivers. A plugin
	// has at most maxSignalBacklog signals queued: past it, signals are
	// dropped for that plugin only, and counted. Guarded by mu.
	queue   []signalItem
	backlog map[string]int    // queued signals by plugin
	lost    map[string]uint64 // signals dropped by plugin
	queued  chan struct{}     // poked when queue gains an item
}

// maxSignalBacklog bounds one plugin's signals between the reader and the
// demultiplexer. A single shared channel dropped whatever came when it was
// full: a service flooding one plugin took the next signal of another.
const maxSignalBacklog = 256

// signalItem is one received signal and the rule of each plugin it matched.
type signalItem struct {
	s       *signalMsg
	sig     string
	plugins []string
	rules   []SignalRule
}

// Options are hooks for the simulated device (internal/simdevice).
type Options struct {
	// OnMatch, if not nil, is told each match rule the host adds to the
	// bus. It runs on the connection loop and must not block.
	OnMatch func(rule string)
}

// New returns the capability, unprovisioned.
func New(o ...Options) *DBus {
	d := &DBus{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), rules: map[string]SignalRules{},
		owners: map[string]string{}, changed: make(chan struct{}, 1), firstTry: make(chan struct{}),
		backlog: map[string]int{}, lost: map[string]uint64{}, queued: make(chan struct{}, 1)}
	if len(o) > 0 {
		d.opts = o[0]
	}
	return d
}

var (
	_ capability.Capability  = (*DBus)(nil)
	_ capability.Configurer  = (*DBus)(nil)
	_ capability.Provisioner = (*DBus)(nil)
	_ capability.Triggerer   = (*DBus)(nil)
	_ capability.Closer      = (*DBus)(nil)
)

func (*DBus) Name() string    { return grant.Name() }
func (*DBus) Module() string  { return abi.ModuleDBus }
func (*DBus) Trigger() string { return "dbus" }

// DecodeGrant decodes plugin.toml's [dbus] into a *Grant, and warns about
// exact destinations that the bus neither has nor can activate.
func (d *DBus) DecodeGrant(s manifest.Section) (any, error) {
	g, err := decodeGrant(s)
	if err != nil {
		return nil, err
	}
	d.warnUnhonourable(g)
	return g, nil
}

// DecodeTrigger decodes [[trigger.dbus]] into SignalRules.
func (*DBus) DecodeTrigger(s manifest.Section) (any, error) { return decodeSignalRules(s) }

// DecodeConfig decodes runtime.toml's [dbus] into a *Config.
func (*DBus) DecodeConfig(s manifest.Section) (any, error) { return decodeConfig(s) }

// Provision takes the config, starts the simulated bus on the simulated
// device, and starts the connection loop. A bus that is not there is not an
// error: plugins get abi.Unavailable until it comes.
func (d *DBus) Provision(ctx context.Context, env capability.Env) error {
	if c, ok := env.Config.(*Config); ok && c != nil {
		d.cfg = *c
	}
	if env.Logger != nil {
		d.log = env.Logger
	}
	d.addr = d.cfg.address()
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if env.Sim && d.cfg.Address == "" {
		dir := filepath.Join(env.Runtime.StateDir, "sim-dbus")
		r, err := dbussim.Start(ctx, dir)
		if err != nil {
			// The simulated device runs on without D-Bus; say how to get it.
			d.log.Warn("simulated system bus not started; D-Bus calls will be unavailable", "error", err.Error())
		} else {
			d.sim = r
			d.addr = r.Bus.Address
		}
	}
	d.wg.Add(2)
	go d.connectLoop()
	go d.demux()
	select { // a bus that is there is connected before plugins load
	case <-d.firstTry:
	case <-time.After(5 * time.Second):
	}
	return nil
}

// Sim returns the simulated device's services, or nil on a real device.
func (d *DBus) Sim() *dbussim.Run { return d.sim }

// Close stops the connection loop and the simulated bus. It is safe after
// a partial Provision and more than once.
func (d *DBus) Close() error {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	d.mu.Lock()
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	d.mu.Unlock()
	if d.sim != nil {
		d.sim.Close()
		d.sim = nil
	}
	return nil
}

// Subscribe sets one plugin's signal rules (nil removes them).
// A plugin whose rules would take the host's connection past
// dbus.max_match_rules gets none, and the error says so: the rules
// already installed for other plugins stay.
func (d *DBus) Subscribe(plugin string, rules any) {
	rs, _ := rules.(SignalRules)
	d.mu.Lock()
	delete(d.rules, plugin)
	n := 0
	if len(rs) > 0 {
		d.rules[plugin] = rs
		if n = matchRuleCount(d.rules); n > d.cfg.MaxMatchRules {
			delete(d.rules, plugin)
		}
	}
	d.mu.Unlock()
	if n > d.cfg.MaxMatchRules {
		d.log.Error("D-Bus signal rules not installed: the plugin gets no signals",
			"plugin", plugin, "capability", "dbus",
			"error", fmt.Sprintf("with its %d [[trigger.dbus]] rules the host's bus connection would hold %d match rules, over dbus.max_match_rules = %d in runtime.toml (raise it, up to the bus's max_match_rules_per_connection, or give plugins fewer rules)", len(rs), n, d.cfg.MaxMatchRules))
	}
	d.poke()
}

// matchRuleCount is how many match rules sync adds for rules: one per
// distinct rule, and one NameOwnerChanged rule per well-known sender.
func matchRuleCount(rules map[string]SignalRules) int {
	want, _ := wantedMatches(rules)
	return len(want)
}

// wantedMatches is the match rules that rules need, and their well-known
// senders, whose owners sync resolves.
func wantedMatches(rules map[string]SignalRules) (want, senders map[string]bool) {
	want, senders = map[string]bool{}, map[string]bool{}
	for _, rs := range rules {
		for _, r := range rs {
			want[r.matchString()] = true
			if r.Sender[0] != ':' {
				senders[r.Sender] = true
				want[fmt.Sprintf(nameOwnerRule, r.Sender)] = true
			}
		}
	}
	return want, senders
}

// Start begins delivering signals.
func (d *DBus) Start(ctx context.Context, deliver capability.Deliver) error {
	d.mu.Lock()
	d.deliver = deliver
	d.mu.Unlock()
	d.poke()
	return nil
}

func (d *DBus) poke() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// current returns the live connection, or an abi.Unavailable error.
func (d *DBus) current() (*godbus.Conn, *inflight, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil && d.conn.Connected() {
		return d.conn, d.flight, nil
	}
	why := "not connected yet"
	if d.lastErr != nil {
		why = d.lastErr.Error()
	}
	return nil, nil, &callError{abi.Unavailable, fmt.Sprintf("D-Bus system bus at %s is unavailable (%s); airlock is reconnecting, retry later", d.addr, why)}
}

// connectLoop dials the bus, keeps its matches in step with the plugins'
// rules, and redials with backoff when it goes away.
func (d *DBus) connectLoop() {
	defer d.wg.Done()
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	reported := ""
	var once sync.Once
	tried := func() { once.Do(func() { close(d.firstTry) }) }
	defer tried()
	for d.ctx.Err() == nil {
		conn, flight, err := d.dial()
		if err != nil {
			d.mu.Lock()
			d.lastErr = err
			d.mu.Unlock()
			tried()
			if err.Error() != reported {
				reported = err.Error()
				d.log.Warn("D-Bus system bus unavailable; retrying", "address", d.addr, "error", err.Error())
			}
			select {
			case <-time.After(backoff):
			case <-d.ctx.Done():
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		backoff, reported = minBackoff, ""
		d.mu.Lock()
		d.conn, d.flight, d.lastErr = conn, flight, nil
		d.gen++
		d.owners = map[string]string{}
		d.mu.Unlock()
		d.log.Info("D-Bus system bus connected", "address", d.addr, "unique_name", conn.Names()[0])
		added := map[string]bool{}
		subscribed := false
		d.sync(conn, added, &subscribed)
		tried()
	wait:
		for {
			select {
			case <-conn.Context().Done():
				break wait
			case <-d.ctx.Done():
				break wait
			case <-d.changed:
				d.sync(conn, added, &subscribed)
			}
		}
		conn.Close()
		d.mu.Lock()
		d.conn = nil
		d.lastErr = errors.New("connection lost")
		d.mu.Unlock()
		if d.ctx.Err() == nil {
			d.log.Warn("D-Bus system bus connection lost; reconnecting", "address", d.addr)
		}
	}
}

func (d *DBus) dial() (*godbus.Conn, *inflight, error) {
	flight := newInflight()
	opts := []godbus.ConnOption{
		godbus.WithIncomingInterceptor(func(msg *godbus.Message) { d.incoming(flight, msg) }),
		godbus.WithOutgoingInterceptor(func(msg *godbus.Message) { d.outgoing(flight, msg) })}
	var conn *godbus.Conn
	var err error
	if sock, ok := unixSocket(d.addr); ok {
		var c net.Conn
		if c, err = net.DialTimeout("unix", sock, 10*time.Second); err == nil {
			conn, err = godbus.NewConn(busSocket{bufio.NewReader(c), c}, opts...)
			if err != nil {
				c.Close()
			}
		}
	} else {
		conn, err = godbus.Dial(d.addr, opts...)
	}
	if err != nil {
		return nil, nil, err
	}
	// Auth and Hello take no context; bound them by closing the
	// connection, which fails them.
	done := make(chan error, 1)
	go func() {
		err := conn.Auth(nil)
		if err == nil {
			err = conn.Hello()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		conn.Close()
		err = <-done
		err = fmt.Errorf("no answer to authentication within 10s: %w", err)
	case <-d.ctx.Done():
		conn.Close()
		<-done
		err = d.ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, flight, nil
}

// unixSocket returns the socket of a unix: bus address (path= or
// abstract=). The host dials it itself, so that godbus does not offer the
// bus unix fd passing: a reply carrying fds (logind's Inhibit) would
// otherwise leave them open in the host, where no guest can take them,
// one set per call. Without the offer the bus refuses to pass fds to the
// host, and the call fails instead.
func unixSocket(addr string) (string, bool) {
	addr, _, _ = strings.Cut(addr, ";")
	rest, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return "", false
	}
	for _, kv := range strings.Split(rest, ",") {
		if p, ok := strings.CutPrefix(kv, "path="); ok {
			return p, true
		}
		if p, ok := strings.CutPrefix(kv, "abstract="); ok {
			return "@" + p, true
		}
	}
	return "", false
}

// busSocket is a unix socket with a buffered reader, for godbus's
// generic transport, which reads a message in many small reads.
type busSocket struct {
	r *bufio.Reader
	net.Conn
}

func (s busSocket) Read(p []byte) (int, error) { return s.r.Read(p) }

// outgoing runs on the sending goroutine, after godbus assigned a serial.
func (d *DBus) outgoing(flight *inflight, msg *godbus.Message) {
	if v, ok := d.mine.LoadAndDelete(msg); ok {
		flight.sent(msg.Serial(), v.(*replySlot))
	}
}

// incoming runs on godbus's reader goroutine for every message: it must
// not block. It records the signature of our replies, and matches and
// queues signals for the demultiplexer.
func (d *DBus) incoming(flight *inflight, msg *godbus.Message) {
	switch msg.Type {
	case godbus.TypeMethodReply, godbus.TypeError:
		rs, _ := msg.Headers[godbus.FieldReplySerial].Value().(uint32)
		if slot := flight.answered(rs); slot != nil {
			sig, _ := msg.Headers[godbus.FieldSignature].Value().(godbus.Signature)
			slot.sig = sig.String()
		}
	case godbus.TypeSignal:
		d.enqueue(msg)
	}
}

// enqueue tracks name owners and queues msg for every plugin with a
// matching rule and room in its backlog, in the order received.
func (d *DBus) enqueue(msg *godbus.Message) {
	h := func(f godbus.HeaderField) string {
		switch v := msg.Headers[f].Value().(type) {
		case string:
			return v
		case godbus.ObjectPath:
			return string(v)
		case godbus.Signature:
			return v.String()
		}
		return ""
	}
	s := &signalMsg{Sender: h(godbus.FieldSender), Path: h(godbus.FieldPath), Interface: h(godbus.FieldInterface), Member: h(godbus.FieldMember), Args: msg.Body}
	it := signalItem{s: s, sig: h(godbus.FieldSignature)}
	d.mu.Lock()
	if s.Sender == "org.freedesktop.DBus" && s.Interface == "org.freedesktop.DBus" && s.Member == "NameOwnerChanged" && len(s.Args) == 3 {
		name, _ := s.Args[0].(string)
		owner, _ := s.Args[2].(string)
		if _, tracked := d.owners[name]; tracked {
			d.owners[name] = owner
		}
	}
	if d.deliver == nil {
		d.mu.Unlock()
		return
	}
	for plugin, rs := range d.rules {
		for _, r := range rs {
			if !r.match(s, d.owners[r.Sender]) {
				continue
			}
			if d.backlog[plugin] >= maxSignalBacklog {
				d.lost[plugin]++
				if n := d.lost[plugin]; n&(n-1) == 0 { // log at powers of two
					d.log.Warn("D-Bus signals dropped: the plugin's backlog is full", "plugin", plugin, "backlog", maxSignalBacklog, "dropped", n)
				}
			} else {
				d.backlog[plugin]++
				it.plugins = append(it.plugins, plugin)
				it.rules = append(it.rules, r)
			}
			break
		}
	}
	if len(it.plugins) > 0 {
		d.queue = append(d.queue, it)
	}
	d.mu.Unlock()
	if len(it.plugins) > 0 {
		select {
		case d.queued <- struct{}{}:
		default:
		}
	}
}

const nameOwnerRule = "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'"

// sync makes conn's matches those the rules need, resolves well-known
// senders, and calls systemd's Manager.Subscribe once a rule listens to it.
func (d *DBus) sync(conn *godbus.Conn, added map[string]bool, subscribed *bool) {
	d.mu.Lock()
	want, senders := wantedMatches(d.rules)
	d.mu.Unlock()
	for m := range want {
		if added[m] {
			continue
		}
		if err := d.busCall(conn, "AddMatch", m); err != nil {
			d.log.Error("D-Bus AddMatch failed", "rule", m, "error", err.Error())
			continue
		}
		added[m] = true
		if d.opts.OnMatch != nil {
			d.opts.OnMatch(m)
		}
	}
	for m := range added {
		if !want[m] {
			d.busCall(conn, "RemoveMatch", m)
			delete(added, m)
		}
	}
	// Resolve after AddMatch, so that a change of owner in between is seen
	// as NameOwnerChanged.
	for s := range senders {
		var owner string
		ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
		err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, s).Store(&owner)
		cancel()
		if err != nil {
			owner = "" // not running now; NameOwnerChanged will tell
		}
		d.mu.Lock()
		d.owners[s] = owner
		d.mu.Unlock()
	}
	if senders["org.freedesktop.systemd1"] && !*subscribed {
		ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
		err := conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").CallWithContext(ctx, "org.freedesktop.systemd1.Manager.Subscribe", 0).Err
		cancel()
		if err != nil {
			d.log.Warn("systemd Manager.Subscribe failed; systemd sends most Manager signals only to subscribers", "error", err.Error())
		} else {
			*subscribed = true
		}
	}
}

func (d *DBus) busCall(conn *godbus.Conn, method, arg string) error {
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	return conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus."+method, 0, arg).Err
}

// demux is the one place signals are delivered from: it hands each queued
// signal to the plugins it matched, in the order received.
func (d *DBus) demux() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.queued:
		}
		d.mu.Lock()
		items := d.queue
		d.queue = nil
		deliver := d.deliver
		d.mu.Unlock()
		for _, it := range items {
			d.route(deliver, it)
		}
	}
}

func (d *DBus) route(deliver capability.Deliver, it signalItem) {
	for i, plugin := range it.plugins {
		r := it.rules[i]
		payload, err := d.signalPayload(it.s, it.sig, r)
		if err != nil {
			d.log.Warn("D-Bus signal not delivered", "plugin", plugin, "member", it.s.Interface+"."+it.s.Member, "error", err.Error())
		} else {
			deliver(plugin, capability.Event{Kind: uint32(abi.EventDBusSignal), Payload: payload})
		}
		d.mu.Lock()
		if d.backlog[plugin]--; d.backlog[plugin] <= 0 {
			delete(d.backlog, plugin)
		}
		d.mu.Unlock()
	}
}

func (d *DBus) signalPayload(s *signalMsg, sig string, r SignalRule) ([]byte, error) {
	body, err := encodeBody(sig, s.Args, d.cfg.MaxReply)
	if err != nil {
		return nil, err
	}
	rec := abi.Record{
		{Key: "sender", Value: []byte(s.Sender)},
		{Key: "path", Value: []byte(s.Path)},
		{Key: "interface", Value: []byte(s.Interface)},
		{Key: "member", Value: []byte(s.Member)},
		{Key: "signature", Value: []byte(sig)},
		{Key: "body", Value: body},
		{Key: "sender_name", Value: []byte(r.Sender)},
	}
	if r.Name != "" {
		rec = append(rec, abi.Field{Key: "rule", Value: []byte(r.Name)})
	}
	return abi.AppendRecord(nil, rec), nil
}

// warnUnhonourable logs grants whose exact destination the bus neither has
// nor can activate: the plugin loads (the service may come later), but the
// operator hears of it at load, not at the first denied call.
func (d *DBus) warnUnhonourable(g *Grant) {
	conn, _, err := d.current()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var names, activatable []string
	if conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ListNames", 0).Store(&names) != nil {
		return
	}
	conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&activatable)
	have := map[string]bool{}
	for _, n := range append(names, activatable...) {
		have[n] = true
	}
	check := func(kind string, i int, p busNamePattern) {
		if !p.family && !have[p.name] {
			d.log.Warn("D-Bus grant cannot be honoured now: no such destination on the bus, and none activatable",
				"manifest", g.file, "rule", fmt.Sprintf("[[dbus.%s]] %d", kind, i+1), "destination", p.name)
		}
	}
	for i, r := range g.Calls {
		check("call", i, r.Destination)
	}
	for i, r := range g.Properties {
		check("property", i, r.Destination)
	}
}

// callError carries an errno and a message for the guest.
type callError struct {
	errno abi.Errno
	msg   string
}

// peerError is an error reply from the D-Bus peer: its message is
// "<name>: <text>", and a guest that asks gets the name as a field too.
type peerError struct {
	callError
	name string
}

// recordError is an error for a request that asked for an error record
// (ABI §3.3.3): the guest gets the message and the peer's error name as
// fields instead of the message alone.
type recordError struct{ error }

func (e *recordError) Unwrap() error { return e.error }

func (e *recordError) ErrorResult() []byte {
	var pe *peerError
	name := ""
	if errors.As(e.error, &pe) {
		name = pe.name
	}
	return abi.AppendErrorRecord(nil, e.Error(), name)
}

// errorRecords makes the errors of h records for a request that asks for
// them (abi.ErrorsField).
func errorRecords(h capability.Handler) capability.Handler {
	return func(ctx context.Context, c *capability.Caller, a *capability.Args) (abi.Record, error) {
		rep, err := h(ctx, c, a)
		if v, _ := a.Record(0).Get(abi.ErrorsField); err != nil && v == abi.ErrorsRecord {
			err = &recordError{err}
		}
		return rep, err
	}
}

func (e *callError) Error() string        { return e.msg }
func (e *callError) Errno() abi.Errno     { return e.errno }
func (e *valueError) Errno() abi.Errno    { return abi.Invalid }
func (e *tooLargeError) Errno() abi.Errno { return abi.TooLarge }

// dbusErrnos maps D-Bus error names to the ABI's error space; any other
// error from a peer is abi.Failed. AccessDenied from a peer is not
// abi.Denied, which means the manifest, and stays abi.Failed.
var dbusErrnos = map[string]abi.Errno{
	"org.freedesktop.DBus.Error.ServiceUnknown":   abi.NotFound,
	"org.freedesktop.DBus.Error.NameHasNoOwner":   abi.NotFound,
	"org.freedesktop.DBus.Error.UnknownObject":    abi.NotFound,
	"org.freedesktop.DBus.Error.UnknownInterface": abi.NotFound,
	"org.freedesktop.DBus.Error.UnknownMethod":    abi.NotFound,
	"org.freedesktop.DBus.Error.UnknownProperty":  abi.NotFound,
	"org.freedesktop.systemd1.NoSuchUnit":         abi.NotFound,
	"org.freedesktop.DBus.Error.InvalidArgs":      abi.Invalid,
	"org.freedesktop.DBus.Error.InvalidSignature": abi.Invalid,
	"org.freedesktop.DBus.Error.PropertyReadOnly": abi.Failed,
	"org.freedesktop.DBus.Error.NoReply":          abi.Timeout,
	"org.freedesktop.DBus.Error.Timeout":          abi.Timeout,
	"org.freedesktop.DBus.Error.Disconnected":     abi.Unavailable,
	"org.freedesktop.DBus.Error.LimitsExceeded":   abi.TooLarge,
}

// invoke makes one method call with a deadline of the smallest of the
// handler's deadline, dbus.call_timeout and the guest's timeout, and
// returns the reply's values and signature.
func (d *DBus) invoke(ctx context.Context, plugin, dest, path, iface, member string, args []any, timeout time.Duration) ([]any, string, error) {
	conn, flight, err := d.current()
	if err != nil {
		return nil, "", err
	}
	limit := d.cfg.CallTimeout
	if timeout > 0 && timeout < limit {
		limit = timeout
	}
	cctx, cancel := capability.CallContext(ctx, limit)
	defer cancel()
	msg := &godbus.Message{Type: godbus.TypeMethodCall, Headers: map[godbus.HeaderField]godbus.Variant{
		godbus.FieldDestination: godbus.MakeVariant(dest),
		godbus.FieldPath:        godbus.MakeVariant(godbus.ObjectPath(path)),
		godbus.FieldInterface:   godbus.MakeVariant(iface),
		godbus.FieldMember:      godbus.MakeVariant(member),
	}, Body: args}
	if len(args) > 0 {
		msg.Headers[godbus.FieldSignature] = godbus.MakeVariant(godbus.SignatureOf(args...))
	}
	var size wireSize
	if err := msg.EncodeTo(&size, binary.LittleEndian); err != nil {
		return nil, "", &callError{abi.Invalid, fmt.Sprintf("%s.%s: %v", iface, member, err)}
	}
	if size > maxMessage {
		return nil, "", &callError{abi.TooLarge, fmt.Sprintf("the call to %s.%s is %d bytes on the wire, over the %d a call may be (values pad to their alignment on the bus: send fewer or larger elements)", iface, member, size, maxMessage)}
	}
	slot := &replySlot{plugin: plugin}
	if err := flight.reserve(slot); err != nil {
		return nil, "", err
	}
	d.mine.Store(msg, slot)
	pending := conn.SendWithContext(cctx, msg, make(chan *godbus.Call, 1))
	// The send is over: either outgoing handed the call to flight, which
	// releases it when the bus answers, or it never went out.
	d.mine.Delete(msg)
	flight.unsent(slot)
	call := <-pending.Done
	if err := call.Err; err != nil {
		var de godbus.Error
		switch {
		case errors.As(err, &de):
			e, ok := dbusErrnos[de.Name]
			if !ok {
				e = abi.Failed
			}
			text := de.Name
			if len(de.Body) > 0 {
				if s, ok := de.Body[0].(string); ok {
					text += ": " + s
				}
			}
			return nil, "", &peerError{callError{e, text}, de.Name}
		case errors.Is(err, context.DeadlineExceeded):
			return nil, "", &callError{abi.Timeout, fmt.Sprintf("no reply from %s to %s.%s within %s (the handler deadline or dbus.call_timeout)", dest, iface, member, limit.Round(time.Millisecond))}
		case !conn.Connected() || errors.Is(err, godbus.ErrClosed):
			return nil, "", &callError{abi.Unavailable, fmt.Sprintf("D-Bus system bus connection lost during %s.%s; airlock is reconnecting, retry later", iface, member)}
		}
		var ve *valueError
		if errors.As(err, &ve) {
			return nil, "", err
		}
		return nil, "", &callError{abi.Failed, fmt.Sprintf("%s.%s: %v", iface, member, err)}
	}
	return call.Body, slot.sig, nil
}

// wireSize counts the bytes a message encodes to.
type wireSize int

func (w *wireSize) Write(p []byte) (int, error) { *w += wireSize(len(p)); return len(p), nil }

// Functions lists airlock_dbus_v1 (ABI §3.3). Each takes a request record
// (req_ptr, req_len) and follows the result convention.
func (d *DBus) Functions() []capability.Func {
	req := capability.Input{Name: "req", Max: maxRequest, Record: true,
		TooLong: func(n uint32) error {
			return &callError{abi.TooLarge, fmt.Sprintf("request of %d bytes exceeds %d", n, maxRequest)}
		},
		Malformed: func(err error) error { return &callError{abi.Invalid, "request is not a valid record: " + err.Error()} }}
	return []capability.Func{
		capability.HostFunc(FuncCall, errorRecords(d.call), req),
		capability.HostFunc(FuncGetProperty, errorRecords(d.getProperty), req),
		capability.HostFunc(FuncGetAllProperties, errorRecords(d.getAllProperties), req),
		capability.HostFunc(FuncSetProperty, errorRecords(d.setProperty), req),
	}
}

// Functions of abi.ModuleDBus.
const (
	FuncCall             = "call"
	FuncGetProperty      = "get_property"
	FuncGetAllProperties = "get_all_properties"
	FuncSetProperty      = "set_property"
)

// maxRequest bounds a request record read from the guest.
const maxRequest = 1 << 20

// maxPath bounds an object path from the guest. The spec sets none; real
// paths (systemd's escaped unit names included) stay far below it.
const maxPath = 4096

// maxMessage bounds a call's D-Bus message as it goes on the wire. Values
// pad to their alignment there, so a request of 1 MiB can grow eightfold
// (a(y)); past a bus's max_message_size, dbus-daemon drops the sender, the
// host's one connection, for every plugin.
const maxMessage = 2 << 20

// target is the addressing fields of a request, validated.
type target struct{ dest, path, iface, member string }

func parseTarget(req abi.Record, memberKey string) (target, error) {
	get := func(k string) string { v, _ := req.Get(k); return v }
	t := target{get("destination"), get("path"), get("interface"), get(memberKey)}
	if err := checkBusName(t.dest); err != nil {
		return t, &callError{abi.Invalid, "destination: " + err.Error()}
	}
	if len(t.path) > maxPath {
		return t, &callError{abi.Invalid, fmt.Sprintf("path: %.60q... is %d bytes, over the %d an object path may have here", t.path, len(t.path), maxPath)}
	}
	if !validObjectPath(t.path) {
		return t, &callError{abi.Invalid, fmt.Sprintf("path: %.80q is not an object path", t.path)}
	}
	if err := checkInterface(t.iface); err != nil {
		return t, &callError{abi.Invalid, "interface: " + err.Error()}
	}
	if err := checkMember(t.member); err != nil {
		return t, &callError{abi.Invalid, memberKey + ": " + err.Error()}
	}
	return t, nil
}

// grant is the plugin's [dbus] grant.
var grant = capability.GrantKey[*Grant]("dbus")

// op is the audit's name for an operation, bounded so that a hostile
// argument cannot flood the audit log.
func op(kind, s string) string {
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return kind + " " + s
}

func (d *DBus) call(ctx context.Context, in *capability.Caller, a *capability.Args) (abi.Record, error) {
	req := a.Record(0)
	t, err := parseTarget(req, "member")
	if err != nil {
		return nil, err
	}
	sig, _ := req.Get("signature")
	body, _ := req.Get("body")
	args, err := decodeBody(sig, []byte(body))
	if err != nil {
		return nil, err
	}
	var timeout time.Duration
	if v, ok := req.Get("timeout_ms"); ok {
		ms, err := strconv.ParseUint(v, 10, 32)
		if err != nil || ms == 0 {
			return nil, &callError{abi.Invalid, fmt.Sprintf("timeout_ms %q is not a positive number", v)}
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	c := Call{Destination: t.dest, Path: t.path, Interface: t.iface, Member: t.member, Args: args}
	if t.iface == propsIface && refusal(t.dest, t.path, t.iface, t.member) == "" {
		// A property access, however it is spelled: judged by the
		// property rules, as get_property and set_property are.
		return d.propertyCall(ctx, in, c, sig)
	}
	g := grant.Of(in)
	ok, why := g.allowCall(c)
	if err := in.Check(ctx, "dbus", op("call", c.String()), decision(ok, why)); err != nil {
		return nil, err
	}
	vals, rsig, err := d.invoke(ctx, in.Plugin, t.dest, t.path, t.iface, t.member, args, timeout)
	if err != nil {
		return nil, err
	}
	if t.iface == objectManagerIface && t.member == "GetManagedObjects" {
		if err := filterManagedObjects(g, t.dest, rsig, vals); err != nil {
			return nil, err
		}
	}
	return d.replyRecord(rsig, vals)
}

// propertyCall judges a call on org.freedesktop.DBus.Properties by what it
// does: Get and GetAll read, Set writes, with the interface and property
// named by its arguments.
func (d *DBus) propertyCall(ctx context.Context, in *capability.Caller, c Call, sig string) (abi.Record, error) {
	want := map[string]string{"Get": "ss", "GetAll": "s", "Set": "ssv"}[c.Member]
	if want == "" {
		err := in.Check(ctx, "dbus", op("call", c.String()), gate.Deny(fmt.Sprintf("%s.%s is not a property access (Get, GetAll or Set); nothing grants it", propsIface, c.Member)))
		return nil, err
	}
	if sig != want {
		return nil, &callError{abi.Invalid, fmt.Sprintf("%s.%s takes (%s), not (%s)", propsIface, c.Member, want, sig)}
	}
	iface := c.Args[0].(string)
	if err := checkInterface(iface); err != nil {
		return nil, &callError{abi.Invalid, fmt.Sprintf("%s.%s argument 0: %v", propsIface, c.Member, err)}
	}
	t := target{dest: c.Destination, path: c.Path, iface: iface}
	if c.Member == "GetAll" {
		return d.propGetAll(ctx, in, t)
	}
	t.member = c.Args[1].(string)
	if err := checkMember(t.member); err != nil {
		return nil, &callError{abi.Invalid, fmt.Sprintf("%s.%s argument 1: %v", propsIface, c.Member, err)}
	}
	if c.Member == "Get" {
		return d.propGet(ctx, in, t)
	}
	return d.propSet(ctx, in, t, c.Args[2].(godbus.Variant))
}

// filterManagedObjects keeps, in a GetManagedObjects reply, only the
// properties a get rule covers: the reply carries every property of every
// object, and reading them is a property read. Paths and interface names
// stay, as Introspect would show them.
// A reply of another shape cannot be filtered, so it does not pass.
func filterManagedObjects(g *Grant, dest, sig string, vals []any) error {
	var objs map[godbus.ObjectPath]map[string]map[string]godbus.Variant
	ok := false
	if sig == "a{oa{sa{sv}}}" && len(vals) == 1 {
		objs, ok = vals[0].(map[godbus.ObjectPath]map[string]map[string]godbus.Variant)
	}
	if !ok {
		return &callError{abi.Failed, fmt.Sprintf("%s answered GetManagedObjects with signature %q, not a{oa{sa{sv}}}; the host passes only what it can filter by the property rules", dest, sig)}
	}
	for path, ifaces := range objs {
		for iface, props := range ifaces {
			for name := range props {
				if !g.propertyAllowed(dest, string(path), iface, name) {
					delete(props, name)
				}
			}
		}
	}
	return nil
}

func (d *DBus) replyRecord(sig string, vals []any) (abi.Record, error) {
	body, err := encodeBody(sig, vals, d.cfg.MaxReply)
	if err != nil {
		var tl *tooLargeError
		if errors.As(err, &tl) {
			return nil, err
		}
		return nil, &callError{abi.Failed, "cannot pass the reply: " + err.Error()}
	}
	return abi.Record{{Key: "signature", Value: []byte(sig)}, {Key: "body", Value: body}}, nil
}

func (d *DBus) getProperty(ctx context.Context, in *capability.Caller, a *capability.Args) (abi.Record, error) {
	req := a.Record(0)
	t, err := parseTarget(req, "name")
	if err != nil {
		return nil, err
	}
	return d.propGet(ctx, in, t)
}

func (d *DBus) propGet(ctx context.Context, in *capability.Caller, t target) (abi.Record, error) {
	ok, why := grant.Of(in).allowProperty("get", t.dest, t.path, t.iface, t.member)
	if err := in.Check(ctx, "dbus", op("get", fmt.Sprintf("%s %s %s.%s", t.dest, t.path, t.iface, t.member)), decision(ok, why)); err != nil {
		return nil, err
	}
	vals, sig, err := d.invoke(ctx, in.Plugin, t.dest, t.path, propsIface, "Get", []any{t.iface, t.member}, 0)
	if err != nil {
		return nil, err
	}
	return d.replyRecord(sig, vals)
}

func (d *DBus) getAllProperties(ctx context.Context, in *capability.Caller, a *capability.Args) (abi.Record, error) {
	req := a.Record(0)
	req = append(req[:len(req):len(req)], abi.Field{Key: "name", Value: []byte("GetAll")})
	t, err := parseTarget(req, "name")
	if err != nil {
		return nil, err
	}
	return d.propGetAll(ctx, in, t)
}

func (d *DBus) propGetAll(ctx context.Context, in *capability.Caller, t target) (abi.Record, error) {
	g := grant.Of(in)
	ok, why := g.allowProperty("get", t.dest, t.path, t.iface, "*")
	if err := in.Check(ctx, "dbus", op("get", fmt.Sprintf("%s %s %s.*", t.dest, t.path, t.iface)), decision(ok, why)); err != nil {
		return nil, err
	}
	vals, sig, err := d.invoke(ctx, in.Plugin, t.dest, t.path, propsIface, "GetAll", []any{t.iface}, 0)
	if err != nil {
		return nil, err
	}
	// Only the properties that a get rule names cross over; a reply of
	// another shape cannot be filtered, so it does not pass.
	m, ok := firstMap(vals)
	if !ok || sig != "a{sv}" {
		return nil, &callError{abi.Failed, fmt.Sprintf("%s answered GetAll with signature %q, not a{sv}; the host passes only what it can filter by the property rules", t.dest, sig)}
	}
	for name := range m {
		if !g.propertyAllowed(t.dest, t.path, t.iface, name) {
			delete(m, name)
		}
	}
	return d.replyRecord(sig, vals)
}

func firstMap(vals []any) (map[string]godbus.Variant, bool) {
	if len(vals) != 1 {
		return nil, false
	}
	m, ok := vals[0].(map[string]godbus.Variant)
	return m, ok
}

func (d *DBus) setProperty(ctx context.Context, in *capability.Caller, a *capability.Args) (abi.Record, error) {
	req := a.Record(0)
	t, err := parseTarget(req, "name")
	if err != nil {
		return nil, err
	}
	sig, _ := req.Get("signature")
	body, _ := req.Get("body")
	vals, err := decodeBody(sig, []byte(body))
	if err != nil {
		return nil, err
	}
	if len(vals) != 1 {
		return nil, &callError{abi.Invalid, fmt.Sprintf("a property value is one complete type; signature %q has %d", sig, len(vals))}
	}
	s, _ := godbus.ParseSignature(sig)
	return d.propSet(ctx, in, t, godbus.MakeVariantWithSignature(vals[0], s))
}

func (d *DBus) propSet(ctx context.Context, in *capability.Caller, t target, v godbus.Variant) (abi.Record, error) {
	ok, why := grant.Of(in).allowProperty("set", t.dest, t.path, t.iface, t.member)
	if err := in.Check(ctx, "dbus", op("set", fmt.Sprintf("%s %s %s.%s", t.dest, t.path, t.iface, t.member)), decision(ok, why)); err != nil {
		return nil, err
	}
	if _, _, err := d.invoke(ctx, in.Plugin, t.dest, t.path, propsIface, "Set", []any{t.iface, t.member, v}, 0); err != nil {
		return nil, err
	}
	return abi.Record{}, nil
}

func decision(ok bool, why string) gate.Decision {
	if ok {
		return gate.Allow(why)
	}
	return gate.Deny(why)
}
