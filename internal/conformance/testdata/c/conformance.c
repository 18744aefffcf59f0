/* The conformance plugin in C; it must log exactly what ../go/main.go logs. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* count shows that the instance's memory lives from one event to the next. */
static int count;

static uint32_t sum(const char *b, size_t n) {
	uint32_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = s * 31 + (uint8_t)b[i];
	return s;
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int on_start(void) { airlock_info("started"); return 0; }
static int on_stop(void) { airlock_info("stopped cleanly"); return 0; }

/* drop_kinds writes " timer:N udev:N ..." for the kinds present in by. */
static const char *drop_kinds(char *buf, size_t n, const uint64_t *by) {
	static const uint32_t kinds[] = {AIRLOCK_EVENT_TIMER, AIRLOCK_EVENT_UDEV, AIRLOCK_EVENT_DBUS_SIGNAL, AIRLOCK_EVENT_MOUNT};
	size_t used = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
		if (by[kinds[i]] && used < n)
			used += snprintf(buf + used, n - used, " %s:%llu", airlock_event_name(kinds[i]), (unsigned long long)by[kinds[i]]);
	return buf;
}

static int on_dropped(const airlock_dropped *d) {
	char a[128], b[128];
	airlock_infof("dropped count=%llu reason=%s rate_limited=%llu coalesced=%llu by_kind=%s coalesced_by_kind=%s",
		(unsigned long long)d->count, d->reason, (unsigned long long)d->rate_limited, (unsigned long long)d->coalesced,
		drop_kinds(a, sizeof a, d->by_kind), drop_kinds(b, sizeof b, d->coalesced_by_kind));
	return 0;
}

static int on_udev(const airlock_uevent *e) {
	airlock_infof("udev action=%s subsystem=%s devtype=%s devname=%s label=%s uuid=%s fstype=%s seqnum=%llu coldplug=%s",
	              e->action, e->subsystem, e->devtype, e->devname, e->label, e->uuid, e->fstype,
	              (unsigned long long)e->seqnum, e->coldplug ? "true" : "false");
	return 0;
}

static void env_step(void) {
	size_t n = 0, total = 5;
	while (environ[n])
		total += strlen(environ[n++]) + 1;
	char **v = malloc((n + 1) * sizeof *v);
	memcpy(v, environ, n * sizeof *v);
	qsort(v, n, sizeof *v, cmpstr);
	char *line = malloc(total), *p = line;
	p += sprintf(p, "env ");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, i ? ",%s" : "%s", v[i]);
	airlock_info(line);
	free(line);
	free(v);
}

/* result logs "<what>: ok" or "<what>: <errno>: <message>", as every
 * language prints a host call's outcome, and frees r. */
static void result(const char *what, airlock_result *r) {
	if (r->err == AIRLOCK_OK)
		airlock_infof("%s: ok", what);
	else if (r->len == 0)
		airlock_infof("%s: %s", what, airlock_errno_name(r->err));
	else
		airlock_infof("%s: %s: %s", what, airlock_errno_name(r->err), r->data);
	airlock_result_free(r);
}

static int cmpsvc(const void *a, const void *b) {
	return strcmp(((const airlock_service_status *)a)->name, ((const airlock_service_status *)b)->name);
}

/* supervisor_step runs one operation against the simulated supervisor. */
static void supervisor_step(const char *step) {
	char what[64];
	snprintf(what, sizeof what, "supervisor %s", step);
	airlock_result r;
	if (!strcmp(step, "version")) {
		r = airlock_supervisor_version();
		if (r.err == AIRLOCK_OK)
			airlock_infof("%s: ok %s", what, r.data);
		else
			result(what, &r);
		airlock_result_free(&r);
	} else if (!strcmp(step, "device")) {
		airlock_device_info d;
		r = airlock_supervisor_device(&d);
		if (r.err == AIRLOCK_OK)
			airlock_infof("%s: ok status=%s supervisor=%s", what, d.status, d.supervisor_version);
		else
			result(what, &r);
		airlock_result_free(&r);
		airlock_device_info_free(&d);
	} else if (!strcmp(step, "state")) {
		airlock_app_status st;
		r = airlock_supervisor_state(&st);
		if (r.err == AIRLOCK_OK) {
			char line[512];
			int n = snprintf(line, sizeof line, "%s: ok app=%s services=", what, st.app_state);
			qsort(st.services, st.service_count, sizeof *st.services, cmpsvc);
			for (uint32_t i = 0; i < st.service_count && n < (int)sizeof line; i++)
				n += snprintf(line + n, sizeof line - n, "%s%s=%s", i ? "," : "", st.services[i].name, st.services[i].status);
			airlock_info(line);
		} else {
			result(what, &r);
		}
		airlock_result_free(&r);
		airlock_app_status_free(&st);
	} else if (!strcmp(step, "blink")) {
		r = airlock_supervisor_blink();
		result(what, &r);
	} else if (!strcmp(step, "restart-main")) {
		r = airlock_supervisor_restart_service("main", false);
		result(what, &r);
	} else if (!strcmp(step, "restart-other")) {
		r = airlock_supervisor_restart_service("other", false);
		result(what, &r);
	} else if (!strcmp(step, "shutdown")) {
		r = airlock_supervisor_shutdown(false);
		result(what, &r);
	} else if (!strcmp(step, "reboot")) {
		r = airlock_supervisor_reboot(false);
		int32_t e = r.err;
		result(what, &r);
		if (e == AIRLOCK_LOCKED)
			airlock_infof("%s: locked, retry later", what);
	} else if (!strcmp(step, "raw")) {
		airlock_record_builder b = {0};
		airlock_record_adds(&b, "forse", "true");
		r = airlock_supervisor_call("reboot", &b, NULL);
		airlock_record_builder_free(&b);
		result(what, &r);
	} else if (!strcmp(step, "device-info")) {
		r = airlock_supervisor_device_type();
		if (r.err != AIRLOCK_OK) {
			result(what, &r);
			return;
		}
		airlock_result a = airlock_supervisor_arch();
		airlock_infof("%s: ok type=%s arch=%s", what, r.data, a.err == AIRLOCK_OK ? a.data : "");
		airlock_result_free(&a);
		airlock_result_free(&r);
	} else if (!strcmp(step, "apps")) {
		airlock_record rep;
		r = airlock_supervisor_apps(&rep);
		if (r.err == AIRLOCK_OK) {
			char line[512], key[160];
			int n = snprintf(line, sizeof line, "%s: ok ", what);
			int first = 1;
			for (uint32_t i = 0; i < rep.count && n < (int)sizeof line; i++) {
				if (strcmp(rep.fields[i].key, "app") != 0)
					continue;
				const char *name = airlock_str(rep.fields[i].value);
				snprintf(key, sizeof key, "%s.update_status", name);
				n += snprintf(line + n, sizeof line - n, "%s%s=%s", first ? "" : ",", name,
				              airlock_str(airlock_record_get(&rep, key)));
				first = 0;
			}
			airlock_info(line);
		} else {
			result(what, &r);
		}
		airlock_result_free(&r);
		airlock_record_free(&rep);
	} else if (!strcmp(step, "logs-other")) {
		airlock_record rep;
		airlock_stream_bounds bd = {0, 0, 0};
		r = airlock_supervisor_read_logs("bluetooth-helper", bd, &rep);
		airlock_record_free(&rep);
		result(what, &r);
	} else if (!strcmp(step, "tag-hostile")) {
		r = airlock_supervisor_set_tag("a b", "x");
		result(what, &r);
	} else {
		airlock_warnf("unknown supervisor step %s", step);
	}
}

/* mount_info prints a mount record without the host's uid= and gid=. */
static void mount_info(char *out, size_t cap, const airlock_mount_info *m) {
	char opts[256] = "", copy[256];
	snprintf(copy, sizeof copy, "%s", m->options);
	size_t n = 0;
	for (char *o = strtok(copy, ","); o != NULL; o = strtok(NULL, ",")) {
		if (!strncmp(o, "uid=", 4) || !strncmp(o, "gid=", 4))
			continue;
		n += snprintf(opts + n, sizeof opts - n, "%s%s", n ? "," : "", o);
	}
	snprintf(out, cap, "target=%s path=%s source=%s device=%s fstype=%s label=%s uuid=%s readonly=%s options=%s note=%s",
	         m->target, m->path, m->source, m->device, m->fstype, m->label, m->uuid, m->readonly ? "true" : "false", opts,
	         m->note);
}

static void mounted(const char *what, airlock_result *r, airlock_mount_info *m) {
	if (r->err == AIRLOCK_OK) {
		char line[1024];
		mount_info(line, sizeof line, m);
		airlock_infof("%s: ok %s", what, line);
		airlock_result_free(r);
	} else {
		result(what, r);
	}
	airlock_mount_info_free(m);
}

/* mount_step mounts on the simulated device's storage. */
static void mount_step(const char *step) {
	char what[64];
	snprintf(what, sizeof what, "mount %s", step);
	airlock_mount_info m;
	airlock_result r;
	if (!strcmp(step, "label")) {
		const char *opts[] = {"sync"};
		airlock_mount_options o = {NULL, NULL, opts, 1};
		r = airlock_mount_by_label("MEDIA", &o, &m);
		mounted(what, &r, &m);
	} else if (!strcmp(step, "uuid")) {
		r = airlock_mount_by_uuid("1234-ABCD", NULL, &m);
		mounted(what, &r, &m);
	} else if (!strcmp(step, "device")) {
		const char *opts[] = {"ro"};
		airlock_mount_options o = {"vfat", "stick", opts, 1};
		r = airlock_mount_device("/dev/sdb1", &o, &m);
		mounted(what, &r, &m);
	} else if (!strcmp(step, "denied-option")) {
		const char *opts[] = {"uid=5"};
		airlock_mount_options o = {NULL, NULL, opts, 1};
		r = airlock_mount_by_label("MEDIA", &o, &m);
		mounted(what, &r, &m);
	} else if (!strcmp(step, "denied-source")) {
		r = airlock_mount_by_label("resin-boot", NULL, &m);
		mounted(what, &r, &m);
	} else if (!strcmp(step, "read")) {
		FILE *f = fopen("/media/MEDIA/README.txt", "r");
		char buf[4096];
		if (!f) {
			airlock_infof("%s: error", what);
			return;
		}
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		airlock_infof("%s: ok len=%zu sum=%u", what, n, sum(buf, n));
	} else if (!strcmp(step, "list")) {
		airlock_mount_list l;
		r = airlock_mounts(&l);
		if (r.err != AIRLOCK_OK) {
			result(what, &r);
		} else {
			airlock_infof("%s: ok %u", what, l.count);
			for (uint32_t i = 0; i < l.count; i++) {
				char line[1024];
				mount_info(line, sizeof line, &l.mounts[i]);
				airlock_infof("%s: %s", what, line);
			}
			airlock_result_free(&r);
		}
		airlock_mount_list_free(&l);
	} else if (!strcmp(step, "unmount")) {
		r = airlock_unmount("MEDIA", NULL);
		result(what, &r);
	} else {
		airlock_warnf("unknown mount step %s", step);
	}
}

static int on_mount(const airlock_mount_event *e) {
	airlock_infof("mount event action=%s target=%s source=%s device=%s reason=%s", e->action, e->target, e->source,
	              e->device, e->reason);
	return 0;
}

static void reply(const char *what, airlock_result *r, airlock_dbus_values *v) {
	static char body[4096];
	if (r->err == AIRLOCK_OK) {
		airlock_dbus_format_values(v, body, sizeof body);
		airlock_infof("%s: ok sig=%s body=%s", what, v->signature, body);
		airlock_result_free(r);
	} else {
		char name[256];
		airlock_dbus_error_name(r, name, sizeof name);
		airlock_infof("%s: %s: %s (error name %s)", what, airlock_errno_name(r->err), r->data, name);
		airlock_result_free(r);
	}
	airlock_dbus_values_free(v);
}

#define MANAGER "org.freedesktop.systemd1.Manager"

/* dbus_step calls the simulated device's system bus. */
static void dbus_step(const char *step) {
	static char text[4096];
	char what[64];
	snprintf(what, sizeof what, "dbus %s", step);
	airlock_dbus_object systemd = {"org.freedesktop.systemd1", "/org/freedesktop/systemd1", 0};
	airlock_dbus_object unit = {"org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice", 0};
	airlock_dbus_object hostname = {"org.freedesktop.hostname1", "/org/freedesktop/hostname1", 0};
	airlock_dbus_writer w = {0};
	airlock_dbus_values v;
	airlock_result r;
	if (!strcmp(step, "getunit") || !strcmp(step, "getunit-missing")) {
		airlock_dbus_put_string(&w, !strcmp(step, "getunit") ? "bluetooth.service" : "nosuch.service");
		r = airlock_dbus_call(&systemd, MANAGER ".GetUnit", &w, &v);
		reply(what, &r, &v);
	} else if (!strcmp(step, "stop") || !strcmp(step, "stop-badmode") || !strcmp(step, "stop-ssh")) {
		airlock_dbus_put_string(&w, !strcmp(step, "stop-ssh") ? "ssh.service" : "bluetooth.service");
		airlock_dbus_put_string(&w, !strcmp(step, "stop-badmode") ? "sideways" : "replace");
		r = airlock_dbus_call(&systemd, MANAGER ".StopUnit", &w, &v);
		reply(what, &r, &v);
	} else if (!strcmp(step, "reboot")) {
		r = airlock_dbus_call(&systemd, MANAGER ".Reboot", NULL, &v);
		reply(what, &r, &v);
	} else if (!strcmp(step, "get") || !strcmp(step, "getall")) {
		if (!strcmp(step, "get"))
			r = airlock_dbus_get_property(&unit, "org.freedesktop.systemd1.Unit.ActiveState", &v);
		else
			r = airlock_dbus_get_all_properties(&unit, "org.freedesktop.systemd1.Unit", &v);
		if (r.err == AIRLOCK_OK) {
			airlock_dbus_format_values(&v, text, sizeof text);
			airlock_infof("%s: ok %s", what, text);
			airlock_result_free(&r);
		} else {
			result(what, &r);
		}
		airlock_dbus_values_free(&v);
	} else if (!strcmp(step, "get-denied")) {
		r = airlock_dbus_get_property(&hostname, "org.freedesktop.hostname1.Hostname", &v);
		result(what, &r);
		airlock_dbus_values_free(&v);
	} else if (!strcmp(step, "set")) {
		airlock_dbus_put_string(&w, "Plant 7");
		r = airlock_dbus_set_property(&hostname, "org.freedesktop.hostname1.PrettyHostname", &w);
		result(what, &r);
	} else if (!strcmp(step, "set-struct")) {
		airlock_dbus_open_struct(&w);
		airlock_dbus_put_int32(&w, -7);
		airlock_dbus_open_array(&w, "s");
		airlock_dbus_put_string(&w, "a");
		airlock_dbus_put_string(&w, "b");
		airlock_dbus_close(&w);
		airlock_dbus_open_array(&w, "{sv}");
		airlock_dbus_put_string(&w, "k");
		airlock_dbus_open_variant(&w, "t");
		airlock_dbus_put_uint64(&w, 9);
		airlock_dbus_close(&w);
		airlock_dbus_close(&w);
		airlock_dbus_close(&w);
		r = airlock_dbus_set_property(&hostname, "org.freedesktop.hostname1.PrettyHostname", &w);
		result(what, &r);
	} else if (!strcmp(step, "set-denied")) {
		airlock_dbus_put_string(&w, "x");
		r = airlock_dbus_set_property(&hostname, "org.freedesktop.hostname1.Hostname", &w);
		result(what, &r);
	} else {
		airlock_warnf("unknown dbus step %s", step);
	}
	airlock_dbus_writer_free(&w);
}

static int on_signal(const airlock_dbus_signal *s) {
	static char body[4096];
	airlock_dbus_format_values(&s->body, body, sizeof body);
	airlock_infof("dbus signal rule=%s sender_name=%s path=%s interface=%s member=%s sig=%s body=%s", s->rule,
	              s->sender_name, s->path, s->interface, s->member, s->signature, body);
	if (!strcmp(s->interface, "org.freedesktop.DBus.Properties") && !strcmp(s->member, "PropertiesChanged") &&
	    !strcmp(s->signature, "sa{sv}as"))
		airlock_infof("dbus properties changed %s: %u changed, %u invalidated", s->body.values[0].str,
		              s->body.values[1].count, s->body.values[2].count);
	return 0;
}

/* vars appends a reply's fields to line as "k=v,k=v", in the host's order. */
static int vars(char *line, size_t cap, int n, const airlock_record *r) {
	for (uint32_t i = 0; i < r->count && n < (int)cap; i++)
		n += snprintf(line + n, cap - n, "%s%s=%s", i ? "," : "", r->fields[i].key, r->fields[i].value);
	return n;
}

/* scopes logs a kind of variables for the device, then for its fleet. */
static void scopes(const char *what, airlock_result (*read)(bool, airlock_record *)) {
	airlock_record d, f;
	airlock_result r = read(false, &d);
	if (r.err != AIRLOCK_OK) {
		airlock_record_free(&d);
		result(what, &r);
		return;
	}
	airlock_result_free(&r);
	r = read(true, &f);
	if (r.err != AIRLOCK_OK) {
		airlock_record_free(&d);
		airlock_record_free(&f);
		result(what, &r);
		return;
	}
	airlock_result_free(&r);
	char line[512];
	int n = snprintf(line, sizeof line, "%s: ok device ", what);
	n = vars(line, sizeof line, n, &d);
	if (n < (int)sizeof line)
		n += snprintf(line + n, sizeof line - n, " fleet ");
	vars(line, sizeof line, n, &f);
	airlock_info(line);
	airlock_record_free(&d);
	airlock_record_free(&f);
}

/* cloud_step runs one operation against the simulated cloud API. The
 * manifest grants every operation, tags.set only for location and
 * tags.delete only for owner. */
static void cloud_step(const char *step) {
	char what[64];
	snprintf(what, sizeof what, "cloud %s", step);
	airlock_record rep;
	airlock_result r;
	if (!strcmp(step, "device")) {
		r = airlock_cloud_device(&rep);
		if (r.err == AIRLOCK_OK) {
			airlock_infof("%s: ok uuid=%s name=%s", what, airlock_str(airlock_record_get(&rep, "uuid")),
			              airlock_str(airlock_record_get(&rep, "name")));
			airlock_result_free(&r);
		} else {
			result(what, &r);
		}
		airlock_record_free(&rep);
	} else if (!strcmp(step, "tags")) {
		r = airlock_cloud_tags(&rep);
		if (r.err == AIRLOCK_OK) {
			char line[512];
			int n = snprintf(line, sizeof line, "%s: ok ", what);
			vars(line, sizeof line, n, &rep);
			airlock_info(line);
			airlock_result_free(&r);
		} else {
			result(what, &r);
		}
		airlock_record_free(&rep);
	} else if (!strcmp(step, "tag-set")) {
		r = airlock_cloud_set_tag("location", "roof");
		result(what, &r);
	} else if (!strcmp(step, "tag-delete")) {
		r = airlock_cloud_delete_tag("owner");
		if (r.err == AIRLOCK_OK) {
			airlock_infof("%s: ok deleted=%s", what, r.data);
			airlock_result_free(&r);
		} else {
			result(what, &r);
		}
	} else if (!strcmp(step, "name")) {
		r = airlock_cloud_set_name("kitchen sensor");
		result(what, &r);
	} else if (!strcmp(step, "env")) {
		scopes(what, airlock_cloud_env);
	} else if (!strcmp(step, "config")) {
		scopes(what, airlock_cloud_config);
	} else if (!strcmp(step, "fleet")) {
		r = airlock_cloud_fleet(&rep);
		if (r.err == AIRLOCK_OK) {
			airlock_infof("%s: ok id=%s name=%s slug=%s device_type=%s public=%s", what,
			              airlock_str(airlock_record_get(&rep, "id")), airlock_str(airlock_record_get(&rep, "name")),
			              airlock_str(airlock_record_get(&rep, "slug")),
			              airlock_str(airlock_record_get(&rep, "device_type")),
			              strcmp(airlock_str(airlock_record_get(&rep, "is_public")), "true") ? "false" : "true");
			airlock_result_free(&r);
		} else {
			result(what, &r);
		}
		airlock_record_free(&rep);
	} else if (!strcmp(step, "tag-denied")) {
		r = airlock_cloud_set_tag("owner", "me");
		result(what, &r);
	} else if (!strcmp(step, "name-invalid")) {
		r = airlock_cloud_set_name("");
		result(what, &r);
	} else {
		airlock_warnf("unknown cloud step %s", step);
	}
}

static int on_timer(const airlock_timer *t) {
	const char *colon = strchr(t->name, ':');
	size_t cl = colon ? (size_t)(colon - t->name) : strlen(t->name);
	const char *arg = colon ? colon + 1 : "";
	char cmd[32];
	snprintf(cmd, sizeof cmd, "%.*s", (int)cl, t->name);

	if (!strcmp(cmd, "seq")) {
		airlock_infof("seq %s", arg);
	} else if (!strcmp(cmd, "count")) {
		airlock_infof("count %d", ++count);
	} else if (!strcmp(cmd, "time")) {
		airlock_infof("time %lld", (long long)t->time_ns);
	} else if (!strcmp(cmd, "config")) {
		airlock_result r = airlock_config(arg);
		if (r.err)
			airlock_infof("config %s missing: %s: %s", arg, airlock_errno_name(r.err), r.data);
		else
			airlock_infof("config %s=%s", arg, r.data);
		airlock_result_free(&r);
	} else if (!strcmp(cmd, "bigconfig")) {
		airlock_result r = airlock_config(arg);
		if (r.err) {
			airlock_result_free(&r);
			return airlock_fail("bigconfig failed");
		}
		airlock_infof("config %s len=%u sum=%u", arg, r.len, sum(r.data, r.len));
		airlock_result_free(&r);
	} else if (!strcmp(cmd, "big")) {
		airlock_infof("big name len=%zu sum=%u", strlen(t->name), sum(t->name, strlen(t->name)));
	} else if (!strcmp(cmd, "env")) {
		env_step();
	} else if (!strcmp(cmd, "levels")) {
		airlock_debug("level debug");
		airlock_info("level info");
		airlock_warn("level warn");
		airlock_error("level error");
	} else if (!strcmp(cmd, "fields")) {
		char count[16];
		snprintf(count, sizeof count, "%d", 3);
		airlock_infokv("fields", "colour", "blue", "count", count, "bad key", "x", "msg", "m", NULL);
	} else if (!strcmp(cmd, "write")) {
		char path[256];
		snprintf(path, sizeof path, "/data/%s", arg);
		FILE *f = fopen(path, "w");
		int ok = f && fprintf(f, "data of %s", arg) > 0;
		if (f && fclose(f) != 0)
			ok = 0;
		airlock_infof("write %s: %s", arg, ok ? "ok" : "error");
	} else if (!strcmp(cmd, "read")) {
		char path[256], buf[256];
		snprintf(path, sizeof path, "/data/%s", arg);
		FILE *f = fopen(path, "r");
		if (!f) {
			airlock_infof("read %s: error", arg);
		} else {
			size_t n = fread(buf, 1, sizeof buf - 1, f);
			buf[n] = 0;
			fclose(f);
			airlock_infof("read %s: %s", arg, buf);
		}
	} else if (!strcmp(cmd, "sleep")) {
		long long ms = strtoll(arg, NULL, 10);
		airlock_infof("sleep %s begin", arg);
		int32_t e = airlock_sleep_ms(ms);
		airlock_infof("sleep %s: %s", arg, e ? airlock_errno_name(e) : "ok");
	} else if (!strcmp(cmd, "deadline")) {
		uint64_t d = airlock_deadline_ns();
		airlock_infof("deadline ok=%s", d > 0 && d <= 10000000000ull ? "true" : "false");
	} else if (!strcmp(cmd, "clock")) {
		airlock_infof("clock ok=%s", airlock_now_ns() > 1600000000000000000ull ? "true" : "false");
	} else if (!strcmp(cmd, "fail")) {
		return airlock_fail("handler failed on purpose");
	} else if (!strcmp(cmd, "sup")) {
		supervisor_step(arg);
	} else if (!strcmp(cmd, "mount")) {
		mount_step(arg);
	} else if (!strcmp(cmd, "dbus")) {
		dbus_step(arg);
	} else if (!strcmp(cmd, "cloud")) {
		cloud_step(arg);
	} else {
		airlock_warnf("unknown step %s", cmd);
	}
	return 0;
}

AIRLOCK_INIT {
	airlock_on_start(on_start);
	airlock_on_stop(on_stop);
	airlock_on_dropped(on_dropped);
	airlock_on_udev(on_udev);
	airlock_on_timer(on_timer);
	airlock_on_mount(on_mount);
	airlock_on_dbus_signal(on_signal);
}
