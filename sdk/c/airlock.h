/*
 * airlock.h: the C SDK for airlock plugins (ABI v1, abi/ABI.md).
 *
 * One header. Include it anywhere; in exactly one .c file of the plugin,
 * define AIRLOCK_IMPLEMENTATION first, so that the exports the host needs
 * (airlock_abi_v1, airlock_on_event) and the SDK's functions are emitted:
 *
 *     #define AIRLOCK_IMPLEMENTATION
 *     #include "airlock.h"
 *
 *     static int on_start(void) {
 *         airlock_result g = airlock_config("greeting");
 *         airlock_infof("%s from C", g.err ? "hello" : g.data);
 *         airlock_result_free(&g);
 *         return 0;
 *     }
 *     AIRLOCK_INIT { airlock_on_start(on_start); }
 *
 * Build as a WASI reactor (the host calls _initialize, which runs
 * AIRLOCK_INIT, then airlock_on_event for each event):
 *
 *     clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *           -o plugin.wasm plugin.c
 *
 * Handlers return 0 when they handled the event, or nonzero when they
 * failed; `return airlock_fail("why");` records a message that the SDK logs
 * as "<kind> handler: why", as the Go SDK does. Nothing the host refuses
 * traps the plugin: every host call returns an airlock_errno.
 *
 * Memory: the SDK mallocs event payloads and results larger than its
 * 4 KiB scratch buffer, and frees event data when the handler returns.
 * Pointers in an event are valid only during its handler.
 */
#ifndef AIRLOCK_H
#define AIRLOCK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors (ABI.md §4) ------------------------------------------------ */

typedef enum airlock_errno {
	AIRLOCK_OK = 0,
	AIRLOCK_DENIED = 1,      /* the manifest does not grant this operation */
	AIRLOCK_INVALID = 2,     /* a malformed or out-of-range argument */
	AIRLOCK_NOT_FOUND = 3,   /* the named thing does not exist */
	AIRLOCK_UNAVAILABLE = 4, /* the backend is down or not configured */
	AIRLOCK_TIMEOUT = 5,     /* the handler deadline or a call timeout passed */
	AIRLOCK_TOO_LARGE = 6,   /* a request or result exceeds its bound */
	AIRLOCK_LOCKED = 7,      /* the device holds an update lock */
	AIRLOCK_FAILED = 8,      /* the backend reported an error */
	AIRLOCK_BUSY = 9,        /* the resource is in use */
	AIRLOCK_FAULT = 10,      /* a pointer or length outside linear memory */
	AIRLOCK_NO_RESULT = 11,  /* result_read with nothing pending */
} airlock_errno;

/* airlock_errno_name returns the errno's name as ABI.md spells it
 * ("not_found"), or "failed" for a code this SDK does not know (ABI.md says
 * to treat an unknown errno as failed). */
const char *airlock_errno_name(int32_t e);

/* ---- logs -------------------------------------------------------------- */

enum {
	AIRLOCK_LEVEL_DEBUG = -4,
	AIRLOCK_LEVEL_INFO = 0,
	AIRLOCK_LEVEL_WARN = 4,
	AIRLOCK_LEVEL_ERROR = 8,
};

/* airlock_log writes msg (len bytes, not NUL-terminated) at level. */
int32_t airlock_log(int32_t level, const char *msg, size_t len);
/* The NUL-terminated and printf forms. */
int32_t airlock_logs(int32_t level, const char *msg);
int32_t airlock_logf(int32_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int32_t airlock_vlogf(int32_t level, const char *fmt, va_list ap);
#define airlock_debug(msg) airlock_logs(AIRLOCK_LEVEL_DEBUG, (msg))
#define airlock_info(msg) airlock_logs(AIRLOCK_LEVEL_INFO, (msg))
#define airlock_warn(msg) airlock_logs(AIRLOCK_LEVEL_WARN, (msg))
#define airlock_error(msg) airlock_logs(AIRLOCK_LEVEL_ERROR, (msg))
#define airlock_debugf(...) airlock_logf(AIRLOCK_LEVEL_DEBUG, __VA_ARGS__)
#define airlock_infof(...) airlock_logf(AIRLOCK_LEVEL_INFO, __VA_ARGS__)
#define airlock_warnf(...) airlock_logf(AIRLOCK_LEVEL_WARN, __VA_ARGS__)
#define airlock_errorf(...) airlock_logf(AIRLOCK_LEVEL_ERROR, __VA_ARGS__)

/* ---- results ----------------------------------------------------------- */

/* An airlock_result is what a host call that returns data gave back: on
 * success (err == AIRLOCK_OK) its value, otherwise the host's message.
 * data is malloc'd, NUL-terminated (len excludes the NUL) and never NULL
 * unless reading the result itself failed; free it with
 * airlock_result_free. */
typedef struct airlock_result {
	int32_t err;
	char *data;
	uint32_t len;
	/* The D-Bus error name of an error from a D-Bus peer
	 * ("org.freedesktop.systemd1.NoSuchUnit"), which the host sends as a
	 * field of its own (ABI.md §3.3.3), or NULL. It lives in data's
	 * allocation. */
	const char *name;
} airlock_result;

void airlock_result_free(airlock_result *r);

/* A raw host function that follows the result convention of ABI.md §2,
 * bound to its other arguments by a capability wrapper. */
typedef int32_t (*airlock_raw_call)(void *ctx, void *out, uint32_t cap, uint32_t *out_len);

/* airlock_call runs fn with the SDK's scratch buffer and, when the result
 * is larger, fetches it with result_read. Capability wrappers use it. */
airlock_result airlock_call(airlock_raw_call fn, void *ctx);

/* ---- base functions (airlock_v1) --------------------------------------- */

/* airlock_config returns the value of key in the manifest's [config];
 * err is AIRLOCK_NOT_FOUND (data is the host's message) when it is absent. */
airlock_result airlock_config(const char *key);
airlock_result airlock_config_n(const char *key, size_t key_len);

/* airlock_now_ns returns the host's wall clock in Unix nanoseconds. */
uint64_t airlock_now_ns(void);

/* airlock_sleep_ns pauses the handler, but never past its deadline: it
 * returns AIRLOCK_TIMEOUT when the deadline cut it short, and
 * AIRLOCK_INVALID for a negative duration. Prefer it to nanosleep, which
 * the host cannot bound. */
int32_t airlock_sleep_ns(int64_t ns);
#define airlock_sleep_ms(ms) airlock_sleep_ns((int64_t)(ms) * 1000000)

/* airlock_deadline_ns returns the nanoseconds left before the running
 * handler is stopped. */
uint64_t airlock_deadline_ns(void);

/* ---- records (ABI.md §2) ----------------------------------------------- */

/* A field of a decoded record. key and value are NUL-terminated copies
 * (value may also hold NULs: use value_len). */
typedef struct airlock_field {
	const char *key;
	const char *value;
	uint32_t key_len, value_len;
} airlock_field;

typedef struct airlock_record {
	uint32_t count;
	airlock_field *fields;
	void *arena; /* owns fields, keys and values */
} airlock_record;

#define AIRLOCK_MAX_RECORD_FIELDS 4096

/* airlock_record_decode decodes n bytes at b into out. It returns
 * AIRLOCK_OK, or AIRLOCK_INVALID for a malformed record (lengths that
 * overrun, trailing bytes, more than 4096 fields), leaving out empty. */
int32_t airlock_record_decode(const void *b, uint32_t n, airlock_record *out);
void airlock_record_free(airlock_record *r);
/* airlock_record_get returns the value of the first field named key, or
 * NULL. */
const char *airlock_record_get(const airlock_record *r, const char *key);

/* airlock_record_builder encodes a record, for capability requests. */
typedef struct airlock_record_builder {
	uint8_t *buf;
	uint32_t len, cap, count;
	bool oom;
} airlock_record_builder;
void airlock_record_add(airlock_record_builder *b, const char *key, const void *value, uint32_t value_len);
void airlock_record_adds(airlock_record_builder *b, const char *key, const char *value);
void airlock_record_builder_free(airlock_record_builder *b);

/* airlock_log_fields writes msg (len bytes) at level with key/value fields,
 * which the host logs as attributes of the line (at most 32; keys of
 * letters, digits, '_', '.' and '-'), as the Go SDK's Log does. fields
 * NULL or empty is airlock_log. A builder that ran out of memory logs the
 * message alone and returns AIRLOCK_FAILED. */
int32_t airlock_log_fields(int32_t level, const char *msg, size_t len, const airlock_record_builder *fields);
/* airlock_logkv is airlock_log_fields with a NUL-terminated msg and
 * NUL-terminated key, value pairs, ended by NULL:
 *   airlock_infokv("tick", "timer", name, "count", count_text, NULL); */
int32_t airlock_logkv(int32_t level, const char *msg, ...) __attribute__((sentinel));
#define airlock_debugkv(...) airlock_logkv(AIRLOCK_LEVEL_DEBUG, __VA_ARGS__)
#define airlock_infokv(...) airlock_logkv(AIRLOCK_LEVEL_INFO, __VA_ARGS__)
#define airlock_warnkv(...) airlock_logkv(AIRLOCK_LEVEL_WARN, __VA_ARGS__)
#define airlock_errorkv(...) airlock_logkv(AIRLOCK_LEVEL_ERROR, __VA_ARGS__)

/* ---- events (ABI.md §5) ------------------------------------------------ */

enum {
	AIRLOCK_EVENT_START = 1,
	AIRLOCK_EVENT_STOP = 2,
	AIRLOCK_EVENT_TIMER = 3,
	AIRLOCK_EVENT_UDEV = 4,
	AIRLOCK_EVENT_DBUS_SIGNAL = 5,
	AIRLOCK_EVENT_DROPPED = 6,
	AIRLOCK_EVENT_MOUNT = 7,
	AIRLOCK_EVENT_MAX = 31 /* handlers can be registered for kinds below this */
};

/* airlock_event_name returns "start", "timer", ..., or "event(N)". */
const char *airlock_event_name(uint32_t kind);

typedef struct airlock_event {
	uint32_t kind;
	airlock_record fields;
} airlock_event;

/* A [[trigger.timer]] firing. */
typedef struct airlock_timer {
	const char *name; /* the timer's name in plugin.toml */
	const char *time; /* when it was due, RFC 3339 with nanoseconds */
	int64_t time_ns;  /* the same in Unix nanoseconds (0 if unparsable) */
} airlock_timer;

/* Events that did not reach the plugin (abi/ABI.md section 5). count were
 * lost: never delivered, to a full queue or over limits.events_per_second
 * (rate_limited of them). coalesced were replaced in the queue by a newer
 * event of the same source (a timer's tick, a device's udev change), which
 * is delivered; they are not in count. by_kind and coalesced_by_kind split
 * the two by event kind, indexed by AIRLOCK_EVENT_* (by_kind[AIRLOCK_EVENT_UDEV]).
 * A host older than these fields sends only count and reason. */
#define AIRLOCK_EVENT_KINDS 8
typedef struct airlock_dropped {
	uint64_t count;
	const char *reason; /* "queue full", "rate limit", both, or "coalesced" */
	uint64_t rate_limited;
	uint64_t coalesced;
	uint64_t by_kind[AIRLOCK_EVENT_KINDS];
	uint64_t coalesced_by_kind[AIRLOCK_EVENT_KINDS];
} airlock_dropped;

/* A device event from a [[trigger.udev]] rule, under udev's names. */
typedef struct airlock_uevent {
	const char *action;    /* add, remove, change, ... ("" if absent) */
	const char *subsystem; /* block, usb, tty, ... */
	const char *devtype;   /* disk, partition, ... */
	const char *devpath;   /* /devices/..., under /sys */
	const char *devname;   /* /dev/sdb1, or "" */
	const char *label;     /* ID_FS_LABEL_ENC decoded, else ID_FS_LABEL */
	const char *uuid;      /* ID_FS_UUID */
	const char *fstype;    /* ID_FS_TYPE */
	uint64_t seqnum;       /* SEQNUM, or 0 for a synthetic event */
	bool coldplug;         /* present before the plugin loaded */
	const airlock_record *props; /* every property, the above included */
} airlock_uevent;

/* airlock_uevent_prop returns a property by its udev name, or NULL. */
const char *airlock_uevent_prop(const airlock_uevent *e, const char *key);

/* Handler registration. Register from AIRLOCK_INIT; a later registration
 * for the same kind replaces an earlier one. Kinds without a handler are
 * ignored, as ABI.md requires for kinds a guest does not know. */
typedef int (*airlock_handler)(const airlock_event *e);
void airlock_on(uint32_t kind, airlock_handler h);
void airlock_on_start(int (*h)(void));
void airlock_on_stop(int (*h)(void));
void airlock_on_timer(int (*h)(const airlock_timer *t));
void airlock_on_dropped(int (*h)(const airlock_dropped *d));
void airlock_on_udev(int (*h)(const airlock_uevent *e));

/* airlock_write_file_atomic replaces the file at path with n bytes of data
 * so that a crash leaves the old contents or the new, never a torn mix: it
 * writes path.tmp-airlock, fsyncs it and renames it over path. A file
 * rewritten in place (fopen "w") can be left half-written. Returns 0, or -1
 * with errno set (the temporary file removed). */
int airlock_write_file_atomic(const char *path, const void *data, size_t n);

/* airlock_fail records why a handler failed and returns 1; the SDK logs
 * "<kind> handler: <msg>" at error level when the handler returns. */
int airlock_fail(const char *msg);

/* AIRLOCK_INIT { ... } runs once when the instance is initialised (from
 * _initialize, before the start event): register handlers there. */
#define AIRLOCK_INIT \
	__attribute__((constructor)) static void airlock_user_init(void)

/* ---- supervisor (ABI.md §3.2, import module airlock_supervisor_v1) ----- */

/* The device supervisor (the balena Supervisor API), without its API key.
 * Each function is one operation that plugin.toml's [supervisor] allow
 * must grant; using any of them adds the airlock_supervisor_v1 import, and
 * the host refuses the plugin at load unless its manifest has that section.
 *
 * Every function returns an airlock_result: err is AIRLOCK_OK or the
 * ABI's code (AIRLOCK_LOCKED when an update lock refused a reboot: retry
 * later or pass force; AIRLOCK_DENIED when the manifest lacks the grant),
 * and data is the host's message on failure. On success data is "" for
 * actions and the value for the reads that return one string. Free it with
 * airlock_result_free in every case.
 *
 *     airlock_result r = airlock_supervisor_reboot(false);
 *     if (r.err == AIRLOCK_LOCKED) airlock_info("update lock held; asking again later");
 *     airlock_result_free(&r);
 */
#define AIRLOCK_OP_PING "ping"
#define AIRLOCK_OP_BLINK "blink"
#define AIRLOCK_OP_REBOOT "reboot"
#define AIRLOCK_OP_SHUTDOWN "shutdown"
#define AIRLOCK_OP_UPDATE "update"
#define AIRLOCK_OP_APP_RESTART "app.restart"
#define AIRLOCK_OP_APP_PURGE "app.purge"
#define AIRLOCK_OP_SERVICE_RESTART "service.restart"
#define AIRLOCK_OP_SERVICE_STOP "service.stop"
#define AIRLOCK_OP_SERVICE_START "service.start"
#define AIRLOCK_OP_DEVICE_READ "device.read"
#define AIRLOCK_OP_HOSTNAME_SET "hostname.set"
#define AIRLOCK_OP_APP_READ "app.read"
#define AIRLOCK_OP_VOLUMES_CLEANUP "volumes.cleanup"
#define AIRLOCK_OP_TAGS_SET "tags.set"         /* scoped: "tags.set:<key>" */
#define AIRLOCK_OP_LOGS_READ "logs.read"       /* scoped: "logs.read:<service>" */
#define AIRLOCK_OP_JOURNAL_READ "journal.read" /* scoped: "journal.read:<unit>" */

/* airlock_supervisor_call runs any operation with a request record (req
 * may be NULL: the empty request) and, on success, decodes the reply record
 * into *reply (may be NULL; free it with airlock_record_free). The typed
 * functions below are built on it. */
airlock_result airlock_supervisor_call(const char *op, const airlock_record_builder *req, airlock_record *reply);

/* Actions. Grant: the operation's name ("reboot", "service.restart:main"). */
airlock_result airlock_supervisor_ping(void);
airlock_result airlock_supervisor_healthy(bool *healthy); /* grant "ping" */
airlock_result airlock_supervisor_blink(void);
airlock_result airlock_supervisor_reboot(bool force);
airlock_result airlock_supervisor_shutdown(bool force);
airlock_result airlock_supervisor_update(bool force, bool *triggered);
airlock_result airlock_supervisor_restart_app(bool force);
airlock_result airlock_supervisor_purge_app(bool force);
airlock_result airlock_supervisor_restart_service(const char *service, bool force);
airlock_result airlock_supervisor_stop_service(const char *service, bool force);
airlock_result airlock_supervisor_start_service(const char *service, bool force);
airlock_result airlock_supervisor_set_hostname(const char *hostname, bool force); /* "" restores the default */

/* Reads (grant "device.read"). These four return the value in data. */
airlock_result airlock_supervisor_version(void);     /* GET /v2/version */
airlock_result airlock_supervisor_device_name(void); /* GET /v2/device/name */
airlock_result airlock_supervisor_hostname(void);    /* GET /v1/device/host-config */
/* GET /v2/device/tags: one field "tag.<name>" per tag, into *tags. */
airlock_result airlock_supervisor_tags(airlock_record *tags);

/* GET /v1/device. The strings point into reply; free with
 * airlock_device_info_free. Absent values are "". */
typedef struct airlock_device_info {
	const char *status, *commit, *os_version, *supervisor_version;
	const char *ip_address, *mac_address; /* space-separated lists */
	int api_port;
	bool update_pending, update_downloaded, update_failed;
	double download_progress; /* a percentage, or -1 when nothing downloads */
	const char *json;         /* the supervisor's whole reply */
	airlock_record reply;
} airlock_device_info;
airlock_result airlock_supervisor_device(airlock_device_info *out);
void airlock_device_info_free(airlock_device_info *d);

/* GET /v2/state/status: the application's state and each service's
 * container status, in the order the host sent them. */
typedef struct airlock_service_status {
	const char *name, *status; /* "main", "Running" */
} airlock_service_status;
typedef struct airlock_app_status {
	const char *status, *app_state, *release, *json;
	double download_progress; /* -1 when nothing downloads */
	uint32_t service_count;
	airlock_service_status *services;
	airlock_record reply;
} airlock_app_status;
airlock_result airlock_supervisor_state(airlock_app_status *out);
void airlock_app_status_free(airlock_app_status *s);

/* The legacy routes POST /v1/restart and /v1/purge (grants "app.restart",
 * "app.purge"). */
airlock_result airlock_supervisor_restart_app_v1(bool force);
airlock_result airlock_supervisor_purge_app_v1(bool force);

/* Grant "app.read", into *reply: airlock_supervisor_app is GET
 * /v1/apps/:appId (app_id, commit, container_id, image, release_id; never
 * the env); airlock_supervisor_apps is GET /v2/applications/state (a field
 * "app" per app name N, then N.app_id, N.app_uuid, N.commit,
 * N.update_status, N.service.<s> = status, N.image.<s> = image, and json);
 * airlock_supervisor_app_state is GET /v2/applications/:appId/state
 * (commit, json). */
airlock_result airlock_supervisor_app(airlock_record *reply);
airlock_result airlock_supervisor_apps(airlock_record *reply);
airlock_result airlock_supervisor_app_state(airlock_record *reply);

/* Grant "device.read": GET /v2/device/vpn; GET /v2/local/device-info (the
 * result's data is the device type or the architecture); GET
 * /v2/containerId (a field "service.<name>" = container id per service). */
airlock_result airlock_supervisor_vpn(bool *enabled, bool *connected);
airlock_result airlock_supervisor_device_type(void);
airlock_result airlock_supervisor_arch(void);
airlock_result airlock_supervisor_container_ids(airlock_record *ids);

/* GET /v2/cleanup-volumes: deletes the volumes no app references. Grant
 * "volumes.cleanup". */
airlock_result airlock_supervisor_cleanup_volumes(void);

/* PATCH /v2/device/tags, one tag. Grant "tags.set:<key>". */
airlock_result airlock_supervisor_set_tag(const char *key, const char *value);

/* Bounds of one stream read; 0 takes the host's default (100 lines,
 * 64 KiB, 1000 ms; at most 1000 lines, 256 KiB, 10000 ms). A read's reply
 * has "lines" (each ending in a newline), "count", "dropped" (read but not
 * delivered), "cut" and "end" ("eof", "lines", "bytes", "deadline",
 * "budget"). */
typedef struct airlock_stream_bounds {
	uint32_t max_lines, max_bytes, wait_ms;
} airlock_stream_bounds;

/* GET /v2/local/logs (local mode): the service's lines only, each the
 * supervisor's JSON. Grant "logs.read:<service>". */
airlock_result airlock_supervisor_read_logs(const char *service, airlock_stream_bounds b, airlock_record *reply);

/* POST /v2/journal-logs. NULL or "" strings are left out; container (a
 * syslog identifier) needs the grant "journal.read:*". Grant
 * "journal.read:<unit>". */
typedef struct airlock_journal_query {
	const char *unit, *container, *since, *until, *format;
	uint32_t count;
	bool follow; /* wait for new entries until the read's bound */
	airlock_stream_bounds bounds;
} airlock_journal_query;
airlock_result airlock_supervisor_read_journal(const airlock_journal_query *q, airlock_record *reply);

/* ---- cloud (ABI.md §3.5, import module airlock_cloud_v1) --------------- */

/* This device's record in the balena cloud (name, tags, variables, its
 * fleet), through the host, which holds the API key. Each function is one
 * operation that plugin.toml's [cloud] allow must grant; using any of them
 * adds the airlock_cloud_v1 import. Results as for the supervisor: err is
 * AIRLOCK_OK or the ABI's code, data the host's message on failure; free
 * with airlock_result_free (and a reply record with airlock_record_free).
 *
 *     airlock_record tags;
 *     airlock_result r = airlock_cloud_tags(&tags);
 */
#define AIRLOCK_CLOUD_DEVICE_READ "device.read"
#define AIRLOCK_CLOUD_NAME_SET "name.set"
#define AIRLOCK_CLOUD_TAGS_READ "tags.read"
#define AIRLOCK_CLOUD_TAG_SET "tags.set"       /* granted per key: "tags.set:<key>" */
#define AIRLOCK_CLOUD_TAG_DELETE "tags.delete" /* granted per key */
#define AIRLOCK_CLOUD_ENV_READ "env.read"
#define AIRLOCK_CLOUD_CONFIG_READ "config.read"
#define AIRLOCK_CLOUD_FLEET_READ "fleet.read"

/* airlock_cloud_call runs any operation (req may be NULL) and decodes the
 * reply into *reply (may be NULL). */
airlock_result airlock_cloud_call(const char *op, const airlock_record_builder *req, airlock_record *reply);
/* The reply fields: uuid, name. Grant "device.read". */
airlock_result airlock_cloud_device(airlock_record *reply);
/* Grant "name.set". */
airlock_result airlock_cloud_set_name(const char *name);
/* One field per tag. Grant "tags.read". */
airlock_result airlock_cloud_tags(airlock_record *tags);
/* Grant "tags.set:<key>". */
airlock_result airlock_cloud_set_tag(const char *key, const char *value);
/* On success r.data is "true" if the device had the tag, else "false".
 * Grant "tags.delete:<key>". */
airlock_result airlock_cloud_delete_tag(const char *key);
/* One field per variable, of the device or (fleet) its fleet. */
airlock_result airlock_cloud_env(bool fleet, airlock_record *vars);    /* grant "env.read" */
airlock_result airlock_cloud_config(bool fleet, airlock_record *vars); /* grant "config.read" */
/* Reply fields: id, name, slug, device_type, is_public. Grant "fleet.read". */
airlock_result airlock_cloud_fleet(airlock_record *reply);

/* ---- mount (ABI.md §3.4, import module airlock_mount_v1) --------------- */

/* External storage, as plugin.toml's [[mount]] grants allow it. Mounts
 * appear under the plugin's media root (/media unless the grant says
 * otherwise), where the plugin reads and writes them with fopen:
 *
 *     airlock_mount_info m;
 *     airlock_result r = airlock_mount_by_label("MEDIA", NULL, &m);  // m.path: "/media/MEDIA"
 *     if (r.err == AIRLOCK_OK) { FILE *f = fopen("/media/MEDIA/config.json", "r"); ... }
 *     airlock_result_free(&r);
 *     airlock_mount_info_free(&m);
 *
 * The host forces nosuid,nodev,noexec, falls back to read-only when a
 * read-write mount is refused (readonly, note), and unmounts what the
 * plugin left mounted when its instance ends. Errors: AIRLOCK_DENIED (not
 * granted, or a system partition), AIRLOCK_NOT_FOUND (no such device),
 * AIRLOCK_BUSY (already mounted), AIRLOCK_INVALID (a label two devices
 * share), with the host's message in data. */

/* Optional mount settings; NULL (or zeroed fields) means the defaults. */
typedef struct airlock_mount_options {
	const char *fstype;           /* vfat, exfat, ext4, ...; NULL: what the host probed */
	const char *target;           /* name under the media root; NULL: label, else UUID, else kernel name */
	const char *const *options;   /* extra options the grant allows: "ro", "sync", "uid=1000" */
	size_t option_count;
} airlock_mount_options;

/* One of the plugin's mounts. The strings point into record; free with
 * airlock_mount_info_free. Absent values are "". */
typedef struct airlock_mount_info {
	const char *target;  /* name under the media root: "MEDIA", "MEDIA-2" */
	const char *path;    /* where the plugin sees it: "/media/MEDIA" */
	const char *source;  /* as asked: "label:MEDIA" */
	const char *device;  /* "/dev/sdb1" */
	const char *fstype, *label, *uuid;
	const char *options; /* every option in effect, comma-separated, forced ones first */
	bool readonly;
	const char *note;    /* why it differs from the request (read-only fallback), or "" */
	airlock_record record;
} airlock_mount_info;
void airlock_mount_info_free(airlock_mount_info *m);

/* airlock_mount_source mounts "label:X", "uuid:X" or "device:/dev/X". */
airlock_result airlock_mount_source(const char *source, const airlock_mount_options *o, airlock_mount_info *out);
airlock_result airlock_mount_by_label(const char *label, const airlock_mount_options *o, airlock_mount_info *out);
airlock_result airlock_mount_by_uuid(const char *uuid, const airlock_mount_options *o, airlock_mount_info *out);
airlock_result airlock_mount_device(const char *node, const airlock_mount_options *o, airlock_mount_info *out);

/* airlock_unmount unmounts a target the plugin mounted. A busy mount is
 * detached lazily (*lazy, if not NULL, says so): it goes away when the last
 * open file on it is closed. */
airlock_result airlock_unmount(const char *target, bool *lazy);

/* The plugin's mounts, sorted by target; free with airlock_mount_list_free. */
typedef struct airlock_mount_list {
	uint32_t count;
	airlock_mount_info *mounts; /* their record members are empty: list owns the strings */
	airlock_record record;
} airlock_mount_list;
airlock_result airlock_mounts(airlock_mount_list *out);
void airlock_mount_list_free(airlock_mount_list *l);

/* The host changed one of the plugin's mounts on its own: a device pulled
 * out while mounted was detached (action "unmounted"). */
typedef struct airlock_mount_event {
	const char *action; /* "unmounted" */
	const char *target, *source, *device;
	const char *reason; /* "device removed", "loop device detached (losetup -d)" */
} airlock_mount_event;
void airlock_on_mount(int (*h)(const airlock_mount_event *e));

/* ---- HTTP (ABI.md §3.6, import module airlock_http_v1) ----------------- */

/* Outbound HTTP(S), as plugin.toml's [[http.request]] rules allow it. The
 * host makes the request, checks every address after DNS and every
 * redirect, and adds the headers a rule attaches (a host-held token the
 * plugin never sees). The body is read in chunks:
 *
 *     const char *hdrs[] = {"Content-Type: application/json"};
 *     airlock_http_request req = {"POST", "https://hooks.example.com/x", hdrs, 1, body, body_len};
 *     airlock_http_response resp;
 *     airlock_result r = airlock_http_do(&req, &resp);
 *     if (r.err == AIRLOCK_OK) {
 *         char buf[512]; uint32_t n;
 *         while ((r = airlock_http_read(&resp, buf, sizeof buf, &n)).err == AIRLOCK_OK && n > 0) { ... }
 *     }
 *     airlock_result_free(&r);
 *     airlock_http_response_free(&resp);   // closes the body
 *
 * Errors: AIRLOCK_DENIED (not granted; an address the rules refuse),
 * AIRLOCK_INVALID (a bad URL or header: CR, LF, NUL, one the host sets),
 * AIRLOCK_TIMEOUT, AIRLOCK_TOO_LARGE, AIRLOCK_UNAVAILABLE, AIRLOCK_FAILED
 * (TLS, redirects), AIRLOCK_BUSY (8 bodies open). A 4xx or 5xx status is
 * AIRLOCK_OK: it is the server's answer. */
typedef struct airlock_http_request {
	const char *method;         /* NULL or "": GET */
	const char *url;
	const char *const *headers; /* "Name: value" */
	size_t header_count;
	const void *body;
	size_t body_len;
} airlock_http_request;

/* The response; free with airlock_http_response_free, which closes its body. */
typedef struct airlock_http_response {
	int status;
	const char *url;        /* after redirects */
	int64_t content_length; /* -1 if unknown */
	const char *body;       /* the body's handle (the reply's "body"); NULL once closed */
	airlock_record record;  /* every field, header.<Name> included */
} airlock_http_response;

airlock_result airlock_http_do(const airlock_http_request *req, airlock_http_response *out);
/* airlock_http_header returns the first value of header name (any case), or NULL. */
const char *airlock_http_header(const airlock_http_response *r, const char *name);
/* airlock_http_read reads the next part of the body into buf; *n is 0 at
 * the end. On an error the body is closed and the result holds the message. */
airlock_result airlock_http_read(airlock_http_response *r, void *buf, uint32_t cap, uint32_t *n);
void airlock_http_response_free(airlock_http_response *r);

/* ---- D-Bus (ABI.md §3.3, import module airlock_dbus_v1) ---------------- */

/* The system bus, as plugin.toml's [[dbus.call]] and [[dbus.property]]
 * rules allow it. Arguments are written with an airlock_dbus_writer, which
 * infers the signature as values are put (arrays and variants name their
 * element's signature, so that an empty one has a type); results are
 * decoded into a tree of airlock_dbus_value:
 *
 *     airlock_dbus_object systemd = {"org.freedesktop.systemd1", "/org/freedesktop/systemd1", 0};
 *     airlock_dbus_writer args = {0};
 *     airlock_dbus_put_string(&args, "bluetooth.service");
 *     airlock_dbus_put_string(&args, "replace");
 *     airlock_dbus_values reply;
 *     airlock_result r = airlock_dbus_call(&systemd, "org.freedesktop.systemd1.Manager.StopUnit", &args, &reply);
 *     if (r.err == AIRLOCK_OK) airlock_infof("job %s", reply.values[0].str);
 *     airlock_result_free(&r); airlock_dbus_values_free(&reply); airlock_dbus_writer_free(&args);
 *
 * A call the manifest does not allow is AIRLOCK_DENIED with a message that
 * names what is missing; the bus being down AIRLOCK_UNAVAILABLE; past the
 * deadline AIRLOCK_TIMEOUT. An error from the peer is NOT_FOUND, INVALID or
 * FAILED with a message that starts with the D-Bus error name, which the
 * result's name holds (airlock_dbus_error_name copies it). */

#define AIRLOCK_DBUS_MAX_DEPTH 64

/* A writer of the value encoding (ABI.md §3.3.2). Zero-initialise it; put
 * values in order, opening and closing containers; free it. A mistake
 * (unbalanced containers, nesting past 64, out of memory) is kept in err
 * and reported by the call that uses the writer. */
typedef struct airlock_dbus_writer {
	uint8_t *buf;
	uint32_t len, cap;
	char sig[256];   /* the signature of what was put at the top level */
	uint32_t sig_len;
	const char *err; /* the first mistake, or NULL */
	uint32_t depth;
	struct {
		char kind;          /* 'a', '(' or 'v' */
		uint8_t per;        /* values per array element: 2 in a dict */
		bool quiet;         /* inside an array or variant: no signature */
		uint32_t count_off; /* where an array's count goes */
		uint32_t values;    /* complete values put directly inside */
	} stack[AIRLOCK_DBUS_MAX_DEPTH];
} airlock_dbus_writer;

void airlock_dbus_put_byte(airlock_dbus_writer *w, uint8_t v);
void airlock_dbus_put_bool(airlock_dbus_writer *w, bool v);
void airlock_dbus_put_int16(airlock_dbus_writer *w, int16_t v);
void airlock_dbus_put_uint16(airlock_dbus_writer *w, uint16_t v);
void airlock_dbus_put_int32(airlock_dbus_writer *w, int32_t v);
void airlock_dbus_put_uint32(airlock_dbus_writer *w, uint32_t v);
void airlock_dbus_put_int64(airlock_dbus_writer *w, int64_t v);
void airlock_dbus_put_uint64(airlock_dbus_writer *w, uint64_t v);
void airlock_dbus_put_double(airlock_dbus_writer *w, double v);
void airlock_dbus_put_string(airlock_dbus_writer *w, const char *s);
void airlock_dbus_put_object_path(airlock_dbus_writer *w, const char *s);
void airlock_dbus_put_signature(airlock_dbus_writer *w, const char *s);
/* An array of elem_sig ("s", "{sv}" for a dict: then put key, value, key,
 * value...), closed by airlock_dbus_close. */
void airlock_dbus_open_array(airlock_dbus_writer *w, const char *elem_sig);
/* A struct, closed by airlock_dbus_close. */
void airlock_dbus_open_struct(airlock_dbus_writer *w);
/* A variant holding one value of sig, closed by airlock_dbus_close. */
void airlock_dbus_open_variant(airlock_dbus_writer *w, const char *sig);
void airlock_dbus_close(airlock_dbus_writer *w);
void airlock_dbus_writer_free(airlock_dbus_writer *w);

/* A decoded value. type is the first character of its signature; a dict
 * is an array whose items are '{' entries holding a key and a value. */
typedef struct airlock_dbus_value {
	char type;             /* y b n q i u x t d s o g a ( v { */
	const char *sig;       /* its complete signature (sig_len bytes, not NUL-terminated) */
	uint32_t sig_len;
	union {
		uint8_t y;
		bool b;
		int16_t n;
		uint16_t q;
		int32_t i;
		uint32_t u;
		int64_t x;
		uint64_t t;
		double d;
	};
	const char *str;       /* s o g: NUL-terminated */
	uint32_t str_len;
	uint32_t count;        /* a: elements; (: fields; v: 1; {: 2 */
	struct airlock_dbus_value *items;
} airlock_dbus_value;

/* Values decoded from a body; they own their memory. */
typedef struct airlock_dbus_values {
	const char *signature;
	uint32_t count;
	airlock_dbus_value *values;
	void *arena;
} airlock_dbus_values;

/* airlock_dbus_decode decodes a body of the signature sig (NUL-terminated).
 * It returns AIRLOCK_OK, or AIRLOCK_INVALID for a bad signature or body. */
int32_t airlock_dbus_decode(const char *sig, const void *body, uint32_t len, airlock_dbus_values *out);
void airlock_dbus_values_free(airlock_dbus_values *v);
/* airlock_dbus_dict_get finds a string key in an a{s...} dict, or NULL. */
const airlock_dbus_value *airlock_dbus_dict_get(const airlock_dbus_value *dict, const char *key);
/* airlock_dbus_inner returns the value inside a variant (through nested ones). */
const airlock_dbus_value *airlock_dbus_inner(const airlock_dbus_value *v);
/* The text form, as snprintf: numbers in decimal, true/false, "string",
 * o"/path", g"sig", [a, b], {k: v}, (a, b), <sig value>; values of a body
 * separated by ", ". */
size_t airlock_dbus_format(const airlock_dbus_value *v, char *buf, size_t cap);
size_t airlock_dbus_format_values(const airlock_dbus_values *v, char *buf, size_t cap);

/* A remote object: a bus name and an object path. timeout_ms, if nonzero,
 * bounds each call below the host's own bound and the handler deadline. */
typedef struct airlock_dbus_object {
	const char *destination;
	const char *path;
	uint32_t timeout_ms;
} airlock_dbus_object;

/* airlock_dbus_call calls method ("interface.Member") with args (NULL: no
 * arguments) and decodes the reply into *reply (may be NULL). */
airlock_result airlock_dbus_call(const airlock_dbus_object *o, const char *method, const airlock_dbus_writer *args,
                                 airlock_dbus_values *reply);
/* airlock_dbus_get_property reads property ("interface.Name"): one variant. */
airlock_result airlock_dbus_get_property(const airlock_dbus_object *o, const char *property, airlock_dbus_values *value);
/* airlock_dbus_get_all_properties reads the properties of iface that the
 * manifest lets the plugin read: one a{sv}. */
airlock_result airlock_dbus_get_all_properties(const airlock_dbus_object *o, const char *iface, airlock_dbus_values *props);
/* airlock_dbus_set_property writes property; value holds one complete
 * value, which the host wraps in a variant. */
airlock_result airlock_dbus_set_property(const airlock_dbus_object *o, const char *property, const airlock_dbus_writer *value);
/* airlock_dbus_error_name copies the D-Bus error name of a failed call
 * (r->name: "org.freedesktop.systemd1.NoSuchUnit") into buf, or "" if the
 * error did not come from the peer or the name does not fit. */
const char *airlock_dbus_error_name(const airlock_result *r, char *buf, size_t cap);

/* A D-Bus signal that a [[trigger.dbus]] rule matched. */
typedef struct airlock_dbus_signal {
	const char *sender;      /* the sender's unique name, ":1.42" */
	const char *sender_name; /* the rule's sender */
	const char *path, *interface, *member;
	const char *rule;        /* the rule's name, or "" */
	const char *signature;
	airlock_dbus_values body;
} airlock_dbus_signal;
void airlock_on_dbus_signal(int (*h)(const airlock_dbus_signal *s));

/* ---- raw imports (ABI.md §3.1) ----------------------------------------- */

#define AIRLOCK_IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))
AIRLOCK_IMPORT("airlock_v1", "log")
int32_t airlock_raw_log(int32_t level, const void *msg, uint32_t len);
AIRLOCK_IMPORT("airlock_v1", "log_fields")
int32_t airlock_raw_log_fields(int32_t level, const void *msg, uint32_t len, const void *fields, uint32_t fields_len);
AIRLOCK_IMPORT("airlock_v1", "config_get")
int32_t airlock_raw_config_get(const void *key, uint32_t key_len, void *out, uint32_t cap, uint32_t *out_len);
AIRLOCK_IMPORT("airlock_v1", "clock_now")
int32_t airlock_raw_clock_now(uint64_t *out);
AIRLOCK_IMPORT("airlock_v1", "sleep")
int32_t airlock_raw_sleep(int64_t ns);
AIRLOCK_IMPORT("airlock_v1", "deadline")
int32_t airlock_raw_deadline(uint64_t *out);
AIRLOCK_IMPORT("airlock_v1", "result_read")
int32_t airlock_raw_result_read(void *out, uint32_t cap, uint32_t *out_len);

/* ABI.md §3.2 */
AIRLOCK_IMPORT("airlock_supervisor_v1", "call")
int32_t airlock_raw_supervisor_call(const void *op, uint32_t op_len, const void *req, uint32_t req_len, void *out,
                                    uint32_t cap, uint32_t *out_len);

/* ABI.md §3.5 */
AIRLOCK_IMPORT("airlock_cloud_v1", "call")
int32_t airlock_raw_cloud_call(const void *op, uint32_t op_len, const void *req, uint32_t req_len, void *out, uint32_t cap,
                               uint32_t *out_len);

/* ABI.md §3.4 */
AIRLOCK_IMPORT("airlock_mount_v1", "mount")
int32_t airlock_raw_mount(const void *req, uint32_t req_len, void *out, uint32_t cap, uint32_t *out_len);
AIRLOCK_IMPORT("airlock_mount_v1", "unmount")
int32_t airlock_raw_unmount(const void *target, uint32_t target_len, void *out, uint32_t cap, uint32_t *out_len);
AIRLOCK_IMPORT("airlock_mount_v1", "list")
int32_t airlock_raw_mount_list(void *out, uint32_t cap, uint32_t *out_len);

/* ABI.md §3.6 */
AIRLOCK_IMPORT("airlock_http_v1", "request")
int32_t airlock_raw_http_request(const void *req, uint32_t req_len, const void *body, uint32_t body_len, void *out,
                                 uint32_t cap, uint32_t *out_len);
AIRLOCK_IMPORT("airlock_http_v1", "body_read")
int32_t airlock_raw_http_body_read(const void *body, uint32_t body_len, void *out, uint32_t cap, uint32_t *out_len);
AIRLOCK_IMPORT("airlock_http_v1", "body_close")
int32_t airlock_raw_http_body_close(const void *body, uint32_t body_len, void *out, uint32_t cap, uint32_t *out_len);

/* ABI.md §3.3.3 */
AIRLOCK_IMPORT("airlock_dbus_v1", "call")
int32_t airlock_raw_dbus_call(const void *req, uint32_t req_len, void *out, uint32_t cap, uint32_t *out_len);
AIRLOCK_IMPORT("airlock_dbus_v1", "get_property")
int32_t airlock_raw_dbus_get_property(const void *req, uint32_t req_len, void *out, uint32_t cap, uint32_t *out_len);
AIRLOCK_IMPORT("airlock_dbus_v1", "get_all_properties")
int32_t airlock_raw_dbus_get_all_properties(const void *req, uint32_t req_len, void *out, uint32_t cap, uint32_t *out_len);
AIRLOCK_IMPORT("airlock_dbus_v1", "set_property")
int32_t airlock_raw_dbus_set_property(const void *req, uint32_t req_len, void *out, uint32_t cap, uint32_t *out_len);

#ifdef __cplusplus
}
#endif

/* ======================================================================== */
#ifdef AIRLOCK_IMPLEMENTATION

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const airlock_errno_names[] = {
	"ok", "denied", "invalid", "not_found", "unavailable", "timeout",
	"too_large", "locked", "failed", "busy", "fault", "no_result",
};

const char *airlock_errno_name(int32_t e) {
	if (e >= 0 && (size_t)e < sizeof airlock_errno_names / sizeof *airlock_errno_names)
		return airlock_errno_names[e];
	return "failed";
}

int32_t airlock_log(int32_t level, const char *msg, size_t len) {
	return airlock_raw_log(level, msg, (uint32_t)len);
}

int32_t airlock_logs(int32_t level, const char *msg) {
	return airlock_raw_log(level, msg, (uint32_t)strlen(msg));
}

int32_t airlock_vlogf(int32_t level, const char *fmt, va_list ap) {
	char small[512];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	int32_t e;
	if (n < 0) {
		e = airlock_logs(level, fmt);
	} else if ((size_t)n < sizeof small) {
		e = airlock_log(level, small, (size_t)n);
	} else {
		char *big = (char *)malloc((size_t)n + 1);
		if (big == NULL) {
			e = airlock_log(level, small, sizeof small - 1);
		} else {
			vsnprintf(big, (size_t)n + 1, fmt, ap2);
			e = airlock_log(level, big, (size_t)n);
			free(big);
		}
	}
	va_end(ap2);
	return e;
}

int32_t airlock_logf(int32_t level, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	int32_t e = airlock_vlogf(level, fmt, ap);
	va_end(ap);
	return e;
}

void airlock_result_free(airlock_result *r) {
	free(r->data);
	r->data = NULL;
	r->len = 0;
	r->name = NULL;
}

/* Small results land here without a malloc. Wasm is single-threaded and a
 * host call never calls back into the guest, so one buffer suffices. */
#define AIRLOCK_SCRATCH 4096
static uint8_t airlock_scratch[AIRLOCK_SCRATCH];

airlock_result airlock_call(airlock_raw_call fn, void *ctx) {
	airlock_result r = {0, NULL, 0};
	uint32_t n = 0;
	r.err = fn(ctx, airlock_scratch, AIRLOCK_SCRATCH, &n);
	if (r.err == AIRLOCK_FAULT)
		n = 0; /* fault has no message */
	r.data = (char *)malloc((size_t)n + 1);
	if (r.data == NULL) {
		r.err = AIRLOCK_TOO_LARGE;
		return r;
	}
	if (n <= AIRLOCK_SCRATCH) {
		memcpy(r.data, airlock_scratch, n);
	} else {
		uint32_t got = 0;
		int32_t e = airlock_raw_result_read(r.data, n, &got);
		if (e != AIRLOCK_OK) {
			free(r.data);
			r.data = NULL;
			r.err = e;
			return r;
		}
	}
	r.data[n] = 0;
	r.len = n;
	return r;
}

struct airlock_config_args {
	const char *key;
	size_t len;
};

static int32_t airlock_config_raw(void *ctx, void *out, uint32_t cap, uint32_t *n) {
	struct airlock_config_args *a = (struct airlock_config_args *)ctx;
	return airlock_raw_config_get(a->key, (uint32_t)a->len, out, cap, n);
}

airlock_result airlock_config_n(const char *key, size_t key_len) {
	struct airlock_config_args a = {key, key_len};
	return airlock_call(airlock_config_raw, &a);
}

airlock_result airlock_config(const char *key) { return airlock_config_n(key, strlen(key)); }

uint64_t airlock_now_ns(void) {
	uint64_t t = 0;
	airlock_raw_clock_now(&t);
	return t;
}

int32_t airlock_sleep_ns(int64_t ns) { return airlock_raw_sleep(ns); }

uint64_t airlock_deadline_ns(void) {
	uint64_t d = 0;
	airlock_raw_deadline(&d);
	return d;
}

/* ---- records ---- */

static uint32_t airlock_le32(const uint8_t *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int32_t airlock_record_decode(const void *data, uint32_t n, airlock_record *out) {
	const uint8_t *b = (const uint8_t *)data;
	out->count = 0;
	out->fields = NULL;
	out->arena = NULL;
	if (n == 0)
		return AIRLOCK_OK;
	if (n < 4)
		return AIRLOCK_INVALID;
	uint32_t count = airlock_le32(b), off = 4;
	if (count > AIRLOCK_MAX_RECORD_FIELDS || (uint64_t)count * 8 > n - 4)
		return AIRLOCK_INVALID;
	/* One allocation: the field array, then each key and value with a NUL.
	 * The copies are at most the input's size plus two NULs a field. */
	size_t size = (size_t)count * sizeof(airlock_field) + n + (size_t)count * 2;
	uint8_t *arena = (uint8_t *)malloc(size ? size : 1);
	if (arena == NULL)
		return AIRLOCK_TOO_LARGE;
	airlock_field *f = (airlock_field *)arena;
	char *s = (char *)(arena + (size_t)count * sizeof(airlock_field));
	for (uint32_t i = 0; i < count; i++) {
		for (int part = 0; part < 2; part++) {
			if (n - off < 4)
				goto bad;
			uint32_t l = airlock_le32(b + off);
			off += 4;
			if (l > n - off)
				goto bad;
			memcpy(s, b + off, l);
			s[l] = 0;
			if (part == 0) {
				f[i].key = s;
				f[i].key_len = l;
			} else {
				f[i].value = s;
				f[i].value_len = l;
			}
			s += l + 1;
			off += l;
		}
	}
	if (off != n)
		goto bad;
	out->count = count;
	out->fields = f;
	out->arena = arena;
	return AIRLOCK_OK;
bad:
	free(arena);
	return AIRLOCK_INVALID;
}

void airlock_record_free(airlock_record *r) {
	free(r->arena);
	r->arena = NULL;
	r->fields = NULL;
	r->count = 0;
}

const char *airlock_record_get(const airlock_record *r, const char *key) {
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < r->count; i++)
		if (r->fields[i].key_len == kl && memcmp(r->fields[i].key, key, kl) == 0)
			return r->fields[i].value;
	return NULL;
}

static void airlock_builder_put(airlock_record_builder *b, const void *p, uint32_t n) {
	if (b->oom)
		return;
	if (b->len + n + 4 > b->cap) {
		uint32_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 4)
			cap *= 2;
		uint8_t *nb = (uint8_t *)realloc(b->buf, cap);
		if (nb == NULL) {
			b->oom = true;
			return;
		}
		if (b->buf == NULL)
			memset(nb, 0, 4); /* the count, filled in as fields are added */
		if (b->len == 0)
			b->len = 4;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void airlock_builder_put32(airlock_record_builder *b, uint32_t v) {
	uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	airlock_builder_put(b, le, 4);
}

void airlock_record_add(airlock_record_builder *b, const char *key, const void *value, uint32_t value_len) {
	uint32_t kl = (uint32_t)strlen(key);
	airlock_builder_put32(b, kl);
	airlock_builder_put(b, key, kl);
	airlock_builder_put32(b, value_len);
	airlock_builder_put(b, value, value_len);
	if (!b->oom) {
		b->count++;
		uint32_t c = b->count;
		uint8_t le[4] = {(uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24)};
		memcpy(b->buf, le, 4);
	}
}

void airlock_record_adds(airlock_record_builder *b, const char *key, const char *value) {
	airlock_record_add(b, key, value, (uint32_t)strlen(value));
}

void airlock_record_builder_free(airlock_record_builder *b) {
	free(b->buf);
	b->buf = NULL;
	b->len = b->cap = b->count = 0;
	b->oom = false;
}

int32_t airlock_log_fields(int32_t level, const char *msg, size_t len, const airlock_record_builder *fields) {
	if (fields != NULL && fields->oom) {
		airlock_log(level, msg, len);
		return AIRLOCK_FAILED;
	}
	if (fields == NULL || fields->count == 0)
		return airlock_log(level, msg, len);
	return airlock_raw_log_fields(level, msg, (uint32_t)len, fields->buf, fields->len);
}

int32_t airlock_logkv(int32_t level, const char *msg, ...) {
	airlock_record_builder b = {0};
	va_list ap;
	va_start(ap, msg);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (k == NULL)
			break;
		const char *v = va_arg(ap, const char *);
		if (v == NULL)
			break;
		airlock_record_adds(&b, k, v);
	}
	va_end(ap);
	int32_t e = airlock_log_fields(level, msg, strlen(msg), &b);
	airlock_record_builder_free(&b);
	return e;
}

/* ---- events ---- */

static const char *const airlock_event_names[] = {
	NULL, "start", "stop", "timer", "udev", "dbus_signal", "dropped", "mount",
};

const char *airlock_event_name(uint32_t kind) {
	static char buf[24];
	if (kind >= 1 && kind < sizeof airlock_event_names / sizeof *airlock_event_names)
		return airlock_event_names[kind];
	snprintf(buf, sizeof buf, "event(%u)", (unsigned)kind);
	return buf;
}

/* The registered handlers, by kind. Each typed handler is kept beside a
 * generic trampoline that decodes the event for it. */
static airlock_handler airlock_handlers[AIRLOCK_EVENT_MAX];
static int (*airlock_start_fn)(void);
static int (*airlock_stop_fn)(void);
static int (*airlock_timer_fn)(const airlock_timer *);
static int (*airlock_dropped_fn)(const airlock_dropped *);
static int (*airlock_udev_fn)(const airlock_uevent *);
static const char *airlock_fail_msg;

void airlock_on(uint32_t kind, airlock_handler h) {
	if (kind < AIRLOCK_EVENT_MAX)
		airlock_handlers[kind] = h;
}

int airlock_fail(const char *msg) {
	airlock_fail_msg = msg;
	return 1;
}

static const char *airlock_str(const char *s) { return s ? s : ""; }

static int airlock_start_tramp(const airlock_event *e) {
	(void)e;
	return airlock_start_fn();
}
static int airlock_stop_tramp(const airlock_event *e) {
	(void)e;
	return airlock_stop_fn();
}

/* airlock_days_from_civil counts days since 1970-01-01 (Howard Hinnant's
 * algorithm), so that RFC 3339 times parse without libc's timegm. */
static int64_t airlock_days_from_civil(int64_t y, int64_t m, int64_t d) {
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int airlock_digits(const char *s, int n, int64_t *v) {
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (s[i] - '0');
	}
	return 1;
}

/* airlock_parse_rfc3339 parses "2006-01-02T15:04:05.999999999Z07:00". */
static int64_t airlock_parse_rfc3339(const char *s) {
	int64_t y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0;
	size_t n = strlen(s);
	if (n < 20 || !airlock_digits(s, 4, &y) || s[4] != '-' || !airlock_digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !airlock_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !airlock_digits(s + 11, 2, &h) ||
	    s[13] != ':' || !airlock_digits(s + 14, 2, &mi) || s[16] != ':' || !airlock_digits(s + 17, 2, &sec))
		return 0;
	const char *p = s + 19;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 9)
				frac = frac * 10 + (*p - '0');
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if (*p == '+' || *p == '-') {
		if (strlen(p) != 6 || !airlock_digits(p + 1, 2, &oh) || p[3] != ':' || !airlock_digits(p + 4, 2, &om))
			return 0;
		if (*p == '-') {
			oh = -oh;
			om = -om;
		}
	} else if (strcmp(p, "Z") != 0 && strcmp(p, "z") != 0) {
		return 0;
	}
	int64_t secs = airlock_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - oh * 3600 - om * 60;
	return secs * 1000000000 + frac;
}

static int airlock_timer_tramp(const airlock_event *e) {
	airlock_timer t;
	t.name = airlock_str(airlock_record_get(&e->fields, "name"));
	t.time = airlock_str(airlock_record_get(&e->fields, "time"));
	t.time_ns = airlock_parse_rfc3339(t.time);
	return airlock_timer_fn(&t);
}

static int airlock_dropped_tramp(const airlock_event *e) {
	airlock_dropped d;
	memset(&d, 0, sizeof d);
	d.count = strtoull(airlock_str(airlock_record_get(&e->fields, "count")), NULL, 10);
	d.reason = airlock_str(airlock_record_get(&e->fields, "reason"));
	d.rate_limited = strtoull(airlock_str(airlock_record_get(&e->fields, "rate_limited")), NULL, 10);
	d.coalesced = strtoull(airlock_str(airlock_record_get(&e->fields, "coalesced")), NULL, 10);
	for (uint32_t i = 0; i < e->fields.count; i++) {
		const char *k = e->fields.fields[i].key, *name = NULL;
		uint64_t *into = NULL;
		if (strncmp(k, "dropped.", 8) == 0)
			name = k + 8, into = d.by_kind;
		else if (strncmp(k, "coalesced.", 10) == 0)
			name = k + 10, into = d.coalesced_by_kind;
		for (uint32_t kind = 1; name && kind < AIRLOCK_EVENT_KINDS; kind++)
			if (strcmp(name, airlock_event_names[kind]) == 0)
				into[kind] = strtoull(e->fields.fields[i].value, NULL, 10);
	}
	return airlock_dropped_fn(&d);
}

static int airlock_hexval(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* airlock_udev_unescape undoes udev's \xNN escaping of *_ENC values into
 * dst, which has room for strlen(src)+1 bytes. */
static void airlock_udev_unescape(char *dst, const char *src) {
	while (*src) {
		if (src[0] == '\\' && src[1] == 'x' && airlock_hexval(src[2]) >= 0 && airlock_hexval(src[3]) >= 0) {
			*dst++ = (char)(airlock_hexval(src[2]) << 4 | airlock_hexval(src[3]));
			src += 4;
			continue;
		}
		*dst++ = *src++;
	}
	*dst = 0;
}

const char *airlock_uevent_prop(const airlock_uevent *e, const char *key) {
	return airlock_record_get(e->props, key);
}

static int airlock_udev_tramp(const airlock_event *e) {
	const airlock_record *r = &e->fields;
	airlock_uevent u;
	u.action = airlock_str(airlock_record_get(r, "ACTION"));
	u.subsystem = airlock_str(airlock_record_get(r, "SUBSYSTEM"));
	u.devtype = airlock_str(airlock_record_get(r, "DEVTYPE"));
	u.devpath = airlock_str(airlock_record_get(r, "DEVPATH"));
	u.devname = airlock_str(airlock_record_get(r, "DEVNAME"));
	u.uuid = airlock_str(airlock_record_get(r, "ID_FS_UUID"));
	u.fstype = airlock_str(airlock_record_get(r, "ID_FS_TYPE"));
	u.seqnum = strtoull(airlock_str(airlock_record_get(r, "SEQNUM")), NULL, 10);
	u.coldplug = strcmp(airlock_str(airlock_record_get(r, "AIRLOCK_SYNTH")), "coldplug") == 0;
	u.props = r;
	char *label = NULL;
	const char *enc = airlock_record_get(r, "ID_FS_LABEL_ENC");
	if (enc != NULL && (label = (char *)malloc(strlen(enc) + 1)) != NULL) {
		airlock_udev_unescape(label, enc);
		u.label = label;
	} else {
		u.label = airlock_str(airlock_record_get(r, "ID_FS_LABEL"));
	}
	int rc = airlock_udev_fn(&u);
	free(label);
	return rc;
}

void airlock_on_start(int (*h)(void)) {
	airlock_start_fn = h;
	airlock_on(AIRLOCK_EVENT_START, airlock_start_tramp);
}
void airlock_on_stop(int (*h)(void)) {
	airlock_stop_fn = h;
	airlock_on(AIRLOCK_EVENT_STOP, airlock_stop_tramp);
}
void airlock_on_timer(int (*h)(const airlock_timer *)) {
	airlock_timer_fn = h;
	airlock_on(AIRLOCK_EVENT_TIMER, airlock_timer_tramp);
}
void airlock_on_dropped(int (*h)(const airlock_dropped *)) {
	airlock_dropped_fn = h;
	airlock_on(AIRLOCK_EVENT_DROPPED, airlock_dropped_tramp);
}
void airlock_on_udev(int (*h)(const airlock_uevent *)) {
	airlock_udev_fn = h;
	airlock_on(AIRLOCK_EVENT_UDEV, airlock_udev_tramp);
}

/* ---- supervisor ---- */

/* airlock_result_msg makes a failed result with a message of the SDK's own. */
static airlock_result airlock_result_msg(int32_t err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static airlock_result airlock_result_msg(int32_t err, const char *fmt, ...) {
	airlock_result r = {err, NULL, 0};
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (r.data = (char *)malloc((size_t)n + 1)) == NULL)
		return r;
	va_start(ap, fmt);
	vsnprintf(r.data, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r.len = (uint32_t)n;
	return r;
}

/* airlock_result_set replaces a result's data with a copy of s. */
static void airlock_result_set(airlock_result *r, const char *s) {
	size_t n = strlen(s);
	char *d = (char *)malloc(n + 1);
	if (d == NULL) {
		r->err = AIRLOCK_TOO_LARGE;
		return;
	}
	memcpy(d, s, n + 1);
	free(r->data);
	r->data = d;
	r->len = (uint32_t)n;
}

struct airlock_sup_args {
	const char *op;
	const airlock_record_builder *req;
};

static int32_t airlock_sup_raw(void *ctx, void *out, uint32_t cap, uint32_t *n) {
	struct airlock_sup_args *a = (struct airlock_sup_args *)ctx;
	const void *req = a->req ? a->req->buf : NULL;
	uint32_t req_len = a->req ? a->req->len : 0;
	return airlock_raw_supervisor_call(a->op, (uint32_t)strlen(a->op), req, req_len, out, cap, n);
}

airlock_result airlock_supervisor_call(const char *op, const airlock_record_builder *req, airlock_record *reply) {
	if (reply != NULL) {
		reply->count = 0;
		reply->fields = NULL;
		reply->arena = NULL;
	}
	if (req != NULL && req->oom)
		return airlock_result_msg(AIRLOCK_TOO_LARGE, "supervisor %s: out of memory building the request", op);
	struct airlock_sup_args a = {op, req};
	airlock_result r = airlock_call(airlock_sup_raw, &a);
	if (r.err != AIRLOCK_OK || r.data == NULL)
		return r;
	if (reply != NULL && airlock_record_decode(r.data, r.len, reply) != AIRLOCK_OK) {
		airlock_result_free(&r);
		return airlock_result_msg(AIRLOCK_FAILED, "supervisor %s: unreadable reply: abi: malformed record", op);
	}
	r.data[0] = 0;
	r.len = 0;
	return r;
}

static airlock_result airlock_sup_run(const char *op, const char *service, const char *hostname, int force) {
	airlock_record_builder b = {0};
	if (service != NULL)
		airlock_record_adds(&b, "service", service);
	if (hostname != NULL)
		airlock_record_adds(&b, "hostname", hostname);
	if (force >= 0)
		airlock_record_adds(&b, "force", force ? "true" : "false");
	airlock_result r = airlock_supervisor_call(op, &b, NULL);
	airlock_record_builder_free(&b);
	return r;
}

/* airlock_sup_read runs op (with what, if not NULL) and decodes the reply. */
static airlock_result airlock_sup_read(const char *op, const char *what, airlock_record *reply) {
	airlock_record_builder b = {0};
	if (what != NULL)
		airlock_record_adds(&b, "what", what);
	airlock_result r = airlock_supervisor_call(op, &b, reply);
	airlock_record_builder_free(&b);
	return r;
}

/* airlock_sup_field reads one field of a read's reply into the result. */
static airlock_result airlock_sup_field(const char *what, const char *field) {
	airlock_record rep;
	airlock_result r = airlock_sup_read(AIRLOCK_OP_DEVICE_READ, what, &rep);
	if (r.err == AIRLOCK_OK)
		airlock_result_set(&r, airlock_str(airlock_record_get(&rep, field)));
	airlock_record_free(&rep);
	return r;
}

static bool airlock_sup_flag(const airlock_record *rep, const char *field) {
	const char *v = airlock_record_get(rep, field);
	return v != NULL && strcmp(v, "true") == 0;
}

static double airlock_sup_progress(const airlock_record *rep) {
	const char *v = airlock_record_get(rep, "download_progress");
	char *end;
	if (v == NULL || *v == 0)
		return -1;
	double d = strtod(v, &end);
	return *end == 0 ? d : -1;
}

airlock_result airlock_supervisor_ping(void) { return airlock_sup_run(AIRLOCK_OP_PING, NULL, NULL, -1); }
airlock_result airlock_supervisor_healthy(bool *healthy) {
	airlock_record rep;
	airlock_result r = airlock_sup_read(AIRLOCK_OP_PING, "healthy", &rep);
	*healthy = r.err == AIRLOCK_OK && airlock_sup_flag(&rep, "healthy");
	airlock_record_free(&rep);
	return r;
}
airlock_result airlock_supervisor_blink(void) { return airlock_sup_run(AIRLOCK_OP_BLINK, NULL, NULL, -1); }
airlock_result airlock_supervisor_reboot(bool force) { return airlock_sup_run(AIRLOCK_OP_REBOOT, NULL, NULL, force); }
airlock_result airlock_supervisor_shutdown(bool force) { return airlock_sup_run(AIRLOCK_OP_SHUTDOWN, NULL, NULL, force); }
airlock_result airlock_supervisor_update(bool force, bool *triggered) {
	airlock_record_builder b = {0};
	airlock_record rep;
	airlock_record_adds(&b, "force", force ? "true" : "false");
	airlock_result r = airlock_supervisor_call(AIRLOCK_OP_UPDATE, &b, &rep);
	*triggered = r.err == AIRLOCK_OK && airlock_sup_flag(&rep, "triggered");
	airlock_record_free(&rep);
	airlock_record_builder_free(&b);
	return r;
}
airlock_result airlock_supervisor_restart_app(bool force) { return airlock_sup_run(AIRLOCK_OP_APP_RESTART, NULL, NULL, force); }
airlock_result airlock_supervisor_purge_app(bool force) { return airlock_sup_run(AIRLOCK_OP_APP_PURGE, NULL, NULL, force); }
airlock_result airlock_supervisor_restart_service(const char *service, bool force) {
	return airlock_sup_run(AIRLOCK_OP_SERVICE_RESTART, service, NULL, force);
}
airlock_result airlock_supervisor_stop_service(const char *service, bool force) {
	return airlock_sup_run(AIRLOCK_OP_SERVICE_STOP, service, NULL, force);
}
airlock_result airlock_supervisor_start_service(const char *service, bool force) {
	return airlock_sup_run(AIRLOCK_OP_SERVICE_START, service, NULL, force);
}
airlock_result airlock_supervisor_set_hostname(const char *hostname, bool force) {
	return airlock_sup_run(AIRLOCK_OP_HOSTNAME_SET, NULL, hostname, force);
}
airlock_result airlock_supervisor_version(void) { return airlock_sup_field("version", "version"); }
airlock_result airlock_supervisor_device_name(void) { return airlock_sup_field("name", "name"); }
airlock_result airlock_supervisor_hostname(void) { return airlock_sup_field("host-config", "hostname"); }
airlock_result airlock_supervisor_tags(airlock_record *tags) {
	return airlock_sup_read(AIRLOCK_OP_DEVICE_READ, "tags", tags);
}

airlock_result airlock_supervisor_device(airlock_device_info *d) {
	memset(d, 0, sizeof *d);
	airlock_result r = airlock_sup_read(AIRLOCK_OP_DEVICE_READ, "device", &d->reply);
	const airlock_record *rep = &d->reply;
	d->status = airlock_str(airlock_record_get(rep, "status"));
	d->commit = airlock_str(airlock_record_get(rep, "commit"));
	d->os_version = airlock_str(airlock_record_get(rep, "os_version"));
	d->supervisor_version = airlock_str(airlock_record_get(rep, "supervisor_version"));
	d->ip_address = airlock_str(airlock_record_get(rep, "ip_address"));
	d->mac_address = airlock_str(airlock_record_get(rep, "mac_address"));
	d->api_port = atoi(airlock_str(airlock_record_get(rep, "api_port")));
	d->update_pending = airlock_sup_flag(rep, "update_pending");
	d->update_downloaded = airlock_sup_flag(rep, "update_downloaded");
	d->update_failed = airlock_sup_flag(rep, "update_failed");
	d->download_progress = airlock_sup_progress(rep);
	d->json = airlock_str(airlock_record_get(rep, "json"));
	return r;
}

void airlock_device_info_free(airlock_device_info *d) { airlock_record_free(&d->reply); }

/* airlock_sup_v1 runs op through its legacy /v1 route. */
static airlock_result airlock_sup_v1(const char *op, bool force) {
	airlock_record_builder b = {0};
	airlock_record_adds(&b, "force", force ? "true" : "false");
	airlock_record_adds(&b, "v1", "true");
	airlock_result r = airlock_supervisor_call(op, &b, NULL);
	airlock_record_builder_free(&b);
	return r;
}
airlock_result airlock_supervisor_restart_app_v1(bool force) { return airlock_sup_v1(AIRLOCK_OP_APP_RESTART, force); }
airlock_result airlock_supervisor_purge_app_v1(bool force) { return airlock_sup_v1(AIRLOCK_OP_APP_PURGE, force); }
airlock_result airlock_supervisor_app(airlock_record *reply) { return airlock_sup_read(AIRLOCK_OP_APP_READ, "app", reply); }
airlock_result airlock_supervisor_apps(airlock_record *reply) { return airlock_sup_read(AIRLOCK_OP_APP_READ, "apps", reply); }
airlock_result airlock_supervisor_app_state(airlock_record *reply) {
	return airlock_sup_read(AIRLOCK_OP_APP_READ, "state", reply);
}
airlock_result airlock_supervisor_vpn(bool *enabled, bool *connected) {
	airlock_record rep;
	airlock_result r = airlock_sup_read(AIRLOCK_OP_DEVICE_READ, "vpn", &rep);
	*enabled = r.err == AIRLOCK_OK && airlock_sup_flag(&rep, "enabled");
	*connected = r.err == AIRLOCK_OK && airlock_sup_flag(&rep, "connected");
	airlock_record_free(&rep);
	return r;
}
airlock_result airlock_supervisor_device_type(void) { return airlock_sup_field("device-info", "device_type"); }
airlock_result airlock_supervisor_arch(void) { return airlock_sup_field("device-info", "arch"); }
airlock_result airlock_supervisor_container_ids(airlock_record *ids) {
	return airlock_sup_read(AIRLOCK_OP_DEVICE_READ, "container-ids", ids);
}
airlock_result airlock_supervisor_cleanup_volumes(void) { return airlock_sup_run(AIRLOCK_OP_VOLUMES_CLEANUP, NULL, NULL, -1); }
airlock_result airlock_supervisor_set_tag(const char *key, const char *value) {
	airlock_record_builder b = {0};
	airlock_record_adds(&b, "key", key);
	airlock_record_adds(&b, "value", value);
	airlock_result r = airlock_supervisor_call(AIRLOCK_OP_TAGS_SET, &b, NULL);
	airlock_record_builder_free(&b);
	return r;
}

/* airlock_sup_addu adds a positive number; 0 is left out. */
static void airlock_sup_addu(airlock_record_builder *b, const char *key, uint32_t v) {
	char n[16];
	if (v == 0)
		return;
	snprintf(n, sizeof n, "%u", (unsigned)v);
	airlock_record_adds(b, key, n);
}

static void airlock_sup_bounds(airlock_record_builder *b, airlock_stream_bounds bd) {
	airlock_sup_addu(b, "max_lines", bd.max_lines);
	airlock_sup_addu(b, "max_bytes", bd.max_bytes);
	airlock_sup_addu(b, "wait_ms", bd.wait_ms);
}

airlock_result airlock_supervisor_read_logs(const char *service, airlock_stream_bounds bd, airlock_record *reply) {
	airlock_record_builder b = {0};
	airlock_record_adds(&b, "service", service);
	airlock_sup_bounds(&b, bd);
	airlock_result r = airlock_supervisor_call(AIRLOCK_OP_LOGS_READ, &b, reply);
	airlock_record_builder_free(&b);
	return r;
}

airlock_result airlock_supervisor_read_journal(const airlock_journal_query *q, airlock_record *reply) {
	airlock_record_builder b = {0};
	const char *keys[] = {"unit", "container", "since", "until", "format"};
	const char *vals[] = {q->unit, q->container, q->since, q->until, q->format};
	for (int i = 0; i < 5; i++)
		if (vals[i] != NULL && *vals[i] != 0)
			airlock_record_adds(&b, keys[i], vals[i]);
	airlock_sup_addu(&b, "count", q->count);
	if (q->follow)
		airlock_record_adds(&b, "follow", "true");
	airlock_sup_bounds(&b, q->bounds);
	airlock_result r = airlock_supervisor_call(AIRLOCK_OP_JOURNAL_READ, &b, reply);
	airlock_record_builder_free(&b);
	return r;
}

airlock_result airlock_supervisor_state(airlock_app_status *s) {
	memset(s, 0, sizeof *s);
	airlock_result r = airlock_sup_read(AIRLOCK_OP_DEVICE_READ, "status", &s->reply);
	const airlock_record *rep = &s->reply;
	s->status = airlock_str(airlock_record_get(rep, "status"));
	s->app_state = airlock_str(airlock_record_get(rep, "app_state"));
	s->release = airlock_str(airlock_record_get(rep, "release"));
	s->json = airlock_str(airlock_record_get(rep, "json"));
	s->download_progress = airlock_sup_progress(rep);
	if (rep->count > 0)
		s->services = (airlock_service_status *)malloc(rep->count * sizeof *s->services);
	for (uint32_t i = 0; s->services != NULL && i < rep->count; i++) {
		if (strncmp(rep->fields[i].key, "service.", 8) == 0) {
			s->services[s->service_count].name = rep->fields[i].key + 8;
			s->services[s->service_count].status = rep->fields[i].value;
			s->service_count++;
		}
	}
	return r;
}

void airlock_app_status_free(airlock_app_status *s) {
	free(s->services);
	s->services = NULL;
	s->service_count = 0;
	airlock_record_free(&s->reply);
}

/* ---- cloud ---- */

static int32_t airlock_cloud_raw(void *ctx, void *out, uint32_t cap, uint32_t *n) {
	struct airlock_sup_args *a = (struct airlock_sup_args *)ctx;
	const void *req = a->req ? a->req->buf : NULL;
	uint32_t req_len = a->req ? a->req->len : 0;
	return airlock_raw_cloud_call(a->op, (uint32_t)strlen(a->op), req, req_len, out, cap, n);
}

airlock_result airlock_cloud_call(const char *op, const airlock_record_builder *req, airlock_record *reply) {
	if (reply != NULL) {
		reply->count = 0;
		reply->fields = NULL;
		reply->arena = NULL;
	}
	if (req != NULL && req->oom)
		return airlock_result_msg(AIRLOCK_TOO_LARGE, "cloud %s: out of memory building the request", op);
	struct airlock_sup_args a = {op, req};
	airlock_result r = airlock_call(airlock_cloud_raw, &a);
	if (r.err != AIRLOCK_OK || r.data == NULL)
		return r;
	if (reply != NULL && airlock_record_decode(r.data, r.len, reply) != AIRLOCK_OK) {
		airlock_result_free(&r);
		return airlock_result_msg(AIRLOCK_FAILED, "cloud %s: unreadable reply: abi: malformed record", op);
	}
	r.data[0] = 0;
	r.len = 0;
	return r;
}

/* airlock_cloud_run runs op with up to two fields (NULL keys are left out). */
static airlock_result airlock_cloud_run(const char *op, const char *k1, const char *v1, const char *k2, const char *v2,
                                        airlock_record *reply) {
	airlock_record_builder b = {0};
	if (k1 != NULL)
		airlock_record_adds(&b, k1, v1);
	if (k2 != NULL)
		airlock_record_adds(&b, k2, v2);
	airlock_result r = airlock_cloud_call(op, &b, reply);
	airlock_record_builder_free(&b);
	return r;
}

airlock_result airlock_cloud_device(airlock_record *reply) {
	return airlock_cloud_run(AIRLOCK_CLOUD_DEVICE_READ, NULL, NULL, NULL, NULL, reply);
}
airlock_result airlock_cloud_set_name(const char *name) {
	return airlock_cloud_run(AIRLOCK_CLOUD_NAME_SET, "name", name, NULL, NULL, NULL);
}
airlock_result airlock_cloud_tags(airlock_record *tags) {
	return airlock_cloud_run(AIRLOCK_CLOUD_TAGS_READ, NULL, NULL, NULL, NULL, tags);
}
airlock_result airlock_cloud_set_tag(const char *key, const char *value) {
	return airlock_cloud_run(AIRLOCK_CLOUD_TAG_SET, "key", key, "value", value, NULL);
}
airlock_result airlock_cloud_delete_tag(const char *key) {
	airlock_record rep;
	airlock_result r = airlock_cloud_run(AIRLOCK_CLOUD_TAG_DELETE, "key", key, NULL, NULL, &rep);
	if (r.err == AIRLOCK_OK)
		airlock_result_set(&r, airlock_str(airlock_record_get(&rep, "deleted")));
	airlock_record_free(&rep);
	return r;
}
airlock_result airlock_cloud_env(bool fleet, airlock_record *vars) {
	return airlock_cloud_run(AIRLOCK_CLOUD_ENV_READ, "scope", fleet ? "fleet" : "device", NULL, NULL, vars);
}
airlock_result airlock_cloud_config(bool fleet, airlock_record *vars) {
	return airlock_cloud_run(AIRLOCK_CLOUD_CONFIG_READ, "scope", fleet ? "fleet" : "device", NULL, NULL, vars);
}
airlock_result airlock_cloud_fleet(airlock_record *reply) {
	return airlock_cloud_run(AIRLOCK_CLOUD_FLEET_READ, NULL, NULL, NULL, NULL, reply);
}

/* ---- mount ---- */

/* airlock_mount_fill points m's fields at the mount record's fields
 * [from, to) of r. */
static void airlock_mount_fill(airlock_mount_info *m, const airlock_record *r, uint32_t from, uint32_t to) {
	m->target = m->path = m->source = m->device = m->fstype = m->label = m->uuid = m->options = m->note = "";
	m->readonly = false;
	for (uint32_t i = from; i < to; i++) {
		const char *k = r->fields[i].key, *v = r->fields[i].value;
		if (!strcmp(k, "target")) m->target = v;
		else if (!strcmp(k, "path")) m->path = v;
		else if (!strcmp(k, "source")) m->source = v;
		else if (!strcmp(k, "device")) m->device = v;
		else if (!strcmp(k, "fstype")) m->fstype = v;
		else if (!strcmp(k, "label")) m->label = v;
		else if (!strcmp(k, "uuid")) m->uuid = v;
		else if (!strcmp(k, "options")) m->options = v;
		else if (!strcmp(k, "readonly")) m->readonly = !strcmp(v, "true");
		else if (!strcmp(k, "note")) m->note = v;
	}
}

static int32_t airlock_mount_raw(void *ctx, void *out, uint32_t cap, uint32_t *n) {
	airlock_record_builder *b = (airlock_record_builder *)ctx;
	return airlock_raw_mount(b->buf, b->len, out, cap, n);
}

airlock_result airlock_mount_source(const char *source, const airlock_mount_options *o, airlock_mount_info *out) {
	memset(out, 0, sizeof *out);
	airlock_mount_fill(out, &out->record, 0, 0);
	airlock_record_builder b = {0};
	airlock_record_adds(&b, "source", source);
	if (o != NULL) {
		if (o->fstype != NULL && *o->fstype)
			airlock_record_adds(&b, "fstype", o->fstype);
		if (o->target != NULL && *o->target)
			airlock_record_adds(&b, "target", o->target);
		for (size_t i = 0; i < o->option_count; i++)
			airlock_record_adds(&b, "option", o->options[i]);
	}
	airlock_result r = b.oom ? airlock_result_msg(AIRLOCK_TOO_LARGE, "mount %s: out of memory", source)
	                         : airlock_call(airlock_mount_raw, &b);
	airlock_record_builder_free(&b);
	if (r.err != AIRLOCK_OK || r.data == NULL)
		return r;
	if (airlock_record_decode(r.data, r.len, &out->record) != AIRLOCK_OK || out->record.count == 0 ||
	    strcmp(out->record.fields[0].key, "target") != 0) {
		airlock_result_free(&r);
		airlock_record_free(&out->record);
		return airlock_result_msg(AIRLOCK_FAILED, "mount: malformed reply");
	}
	airlock_mount_fill(out, &out->record, 0, out->record.count);
	r.data[0] = 0;
	r.len = 0;
	return r;
}

static airlock_result airlock_mount_prefixed(const char *prefix, const char *name, const airlock_mount_options *o,
                                             airlock_mount_info *out) {
	size_t pl = strlen(prefix), nl = strlen(name);
	char *src = (char *)malloc(pl + nl + 1);
	if (src == NULL) {
		memset(out, 0, sizeof *out);
		return airlock_result_msg(AIRLOCK_TOO_LARGE, "mount: out of memory");
	}
	memcpy(src, prefix, pl);
	memcpy(src + pl, name, nl + 1);
	airlock_result r = airlock_mount_source(src, o, out);
	free(src);
	return r;
}

airlock_result airlock_mount_by_label(const char *label, const airlock_mount_options *o, airlock_mount_info *out) {
	return airlock_mount_prefixed("label:", label, o, out);
}
airlock_result airlock_mount_by_uuid(const char *uuid, const airlock_mount_options *o, airlock_mount_info *out) {
	return airlock_mount_prefixed("uuid:", uuid, o, out);
}
airlock_result airlock_mount_device(const char *node, const airlock_mount_options *o, airlock_mount_info *out) {
	return airlock_mount_prefixed("device:", node, o, out);
}

void airlock_mount_info_free(airlock_mount_info *m) { airlock_record_free(&m->record); }

static int32_t airlock_unmount_raw(void *ctx, void *out, uint32_t cap, uint32_t *n) {
	const char *t = (const char *)ctx;
	return airlock_raw_unmount(t, (uint32_t)strlen(t), out, cap, n);
}

airlock_result airlock_unmount(const char *target, bool *lazy) {
	airlock_result r = airlock_call(airlock_unmount_raw, (void *)target);
	if (lazy != NULL)
		*lazy = false;
	if (r.err != AIRLOCK_OK || r.data == NULL)
		return r;
	airlock_record rec;
	if (lazy != NULL && airlock_record_decode(r.data, r.len, &rec) == AIRLOCK_OK) {
		*lazy = strcmp(airlock_str(airlock_record_get(&rec, "lazy")), "true") == 0;
		airlock_record_free(&rec);
	}
	r.data[0] = 0;
	r.len = 0;
	return r;
}

static int32_t airlock_list_raw(void *ctx, void *out, uint32_t cap, uint32_t *n) {
	(void)ctx;
	return airlock_raw_mount_list(out, cap, n);
}

airlock_result airlock_mounts(airlock_mount_list *l) {
	memset(l, 0, sizeof *l);
	airlock_result r = airlock_call(airlock_list_raw, NULL);
	if (r.err != AIRLOCK_OK || r.data == NULL)
		return r;
	if (airlock_record_decode(r.data, r.len, &l->record) != AIRLOCK_OK) {
		airlock_result_free(&r);
		return airlock_result_msg(AIRLOCK_FAILED, "mount list: malformed reply");
	}
	r.data[0] = 0;
	r.len = 0;
	const airlock_record *rec = &l->record;
	uint32_t n = 0;
	for (uint32_t i = 0; i < rec->count; i++)
		n += strcmp(rec->fields[i].key, "target") == 0;
	if (n == 0)
		return r;
	l->mounts = (airlock_mount_info *)calloc(n, sizeof *l->mounts);
	if (l->mounts == NULL) {
		airlock_record_free(&l->record);
		airlock_result_free(&r);
		return airlock_result_msg(AIRLOCK_TOO_LARGE, "mount list: out of memory");
	}
	for (uint32_t i = 0; i < rec->count;) {
		uint32_t j = i + 1;
		while (j < rec->count && strcmp(rec->fields[j].key, "target") != 0)
			j++;
		if (strcmp(rec->fields[i].key, "target") == 0)
			airlock_mount_fill(&l->mounts[l->count++], rec, i, j);
		i = j;
	}
	return r;
}

void airlock_mount_list_free(airlock_mount_list *l) {
	free(l->mounts);
	l->mounts = NULL;
	l->count = 0;
	airlock_record_free(&l->record);
}

static int (*airlock_mount_fn)(const airlock_mount_event *);

static int airlock_mount_tramp(const airlock_event *e) {
	airlock_mount_event m;
	m.action = airlock_str(airlock_record_get(&e->fields, "action"));
	m.target = airlock_str(airlock_record_get(&e->fields, "target"));
	m.source = airlock_str(airlock_record_get(&e->fields, "source"));
	m.device = airlock_str(airlock_record_get(&e->fields, "device"));
	m.reason = airlock_str(airlock_record_get(&e->fields, "reason"));
	return airlock_mount_fn(&m);
}

void airlock_on_mount(int (*h)(const airlock_mount_event *)) {
	airlock_mount_fn = h;
	airlock_on(AIRLOCK_EVENT_MOUNT, airlock_mount_tramp);
}

/* ---- D-Bus ---- */

static void airlock_dw_bytes(airlock_dbus_writer *w, const void *p, uint32_t n) {
	if (w->err != NULL)
		return;
	if (w->len + n > w->cap) {
		uint32_t cap = w->cap ? w->cap : 64;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *nb = (uint8_t *)realloc(w->buf, cap);
		if (nb == NULL) {
			w->err = "dbus: out of memory";
			return;
		}
		w->buf = nb;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

/* airlock_dw_sig adds to the top-level signature unless inside an array
 * or a variant, whose signatures were given when they were opened. */
static void airlock_dw_sig(airlock_dbus_writer *w, const char *s) {
	if (w->err != NULL || (w->depth > 0 && w->stack[w->depth - 1].quiet))
		return;
	size_t n = strlen(s);
	if (w->sig_len + n > 255) {
		w->err = "dbus: signature longer than 255 bytes";
		return;
	}
	memcpy(w->sig + w->sig_len, s, n + 1);
	w->sig_len += (uint32_t)n;
}

/* airlock_dw_done counts a complete value in the enclosing container. */
static void airlock_dw_done(airlock_dbus_writer *w) {
	if (w->depth > 0)
		w->stack[w->depth - 1].values++;
}

static void airlock_dw_basic(airlock_dbus_writer *w, const char *code, const void *le, uint32_t n) {
	airlock_dw_sig(w, code);
	airlock_dw_bytes(w, le, n);
	airlock_dw_done(w);
}

static void airlock_dw_le(uint8_t *out, uint64_t v, int n) {
	for (int i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

static void airlock_dw_u32(airlock_dbus_writer *w, uint32_t v) {
	uint8_t le[4];
	airlock_dw_le(le, v, 4);
	airlock_dw_bytes(w, le, 4);
}

#define AIRLOCK_DW_INT(name, type, code, n)                    \
	void airlock_dbus_put_##name(airlock_dbus_writer *w, type v) { \
		uint8_t le[n];                                         \
		airlock_dw_le(le, (uint64_t)v, n);                     \
		airlock_dw_basic(w, code, le, n);                      \
	}
AIRLOCK_DW_INT(byte, uint8_t, "y", 1)
AIRLOCK_DW_INT(int16, int16_t, "n", 2)
AIRLOCK_DW_INT(uint16, uint16_t, "q", 2)
AIRLOCK_DW_INT(int32, int32_t, "i", 4)
AIRLOCK_DW_INT(uint32, uint32_t, "u", 4)
AIRLOCK_DW_INT(int64, int64_t, "x", 8)
AIRLOCK_DW_INT(uint64, uint64_t, "t", 8)

void airlock_dbus_put_bool(airlock_dbus_writer *w, bool v) {
	uint8_t b = v ? 1 : 0;
	airlock_dw_basic(w, "b", &b, 1);
}

void airlock_dbus_put_double(airlock_dbus_writer *w, double v) {
	uint64_t bits;
	uint8_t le[8];
	memcpy(&bits, &v, 8);
	airlock_dw_le(le, bits, 8);
	airlock_dw_basic(w, "d", le, 8);
}

static void airlock_dw_text(airlock_dbus_writer *w, const char *code, const char *s) {
	airlock_dw_sig(w, code);
	uint32_t n = (uint32_t)strlen(s);
	airlock_dw_u32(w, n);
	airlock_dw_bytes(w, s, n);
	airlock_dw_done(w);
}

void airlock_dbus_put_string(airlock_dbus_writer *w, const char *s) { airlock_dw_text(w, "s", s); }
void airlock_dbus_put_object_path(airlock_dbus_writer *w, const char *s) { airlock_dw_text(w, "o", s); }
void airlock_dbus_put_signature(airlock_dbus_writer *w, const char *s) { airlock_dw_text(w, "g", s); }

static void airlock_dw_push(airlock_dbus_writer *w, char kind, bool quiet) {
	if (w->err != NULL)
		return;
	if (w->depth >= AIRLOCK_DBUS_MAX_DEPTH) {
		w->err = "dbus: value nested too deep";
		return;
	}
	bool outer_quiet = w->depth > 0 && w->stack[w->depth - 1].quiet;
	w->stack[w->depth].kind = kind;
	w->stack[w->depth].per = 1;
	w->stack[w->depth].quiet = quiet || outer_quiet;
	w->stack[w->depth].count_off = w->len;
	w->stack[w->depth].values = 0;
	w->depth++;
}

void airlock_dbus_open_array(airlock_dbus_writer *w, const char *elem_sig) {
	airlock_dw_sig(w, "a");
	airlock_dw_sig(w, elem_sig);
	airlock_dw_push(w, 'a', true);
	if (w->err == NULL && elem_sig[0] == '{')
		w->stack[w->depth - 1].per = 2;
	airlock_dw_u32(w, 0); /* the count, filled in by airlock_dbus_close */
}

void airlock_dbus_open_struct(airlock_dbus_writer *w) {
	airlock_dw_sig(w, "(");
	airlock_dw_push(w, '(', false);
}

void airlock_dbus_open_variant(airlock_dbus_writer *w, const char *sig) {
	airlock_dw_sig(w, "v");
	airlock_dw_push(w, 'v', true);
	uint32_t n = (uint32_t)strlen(sig);
	airlock_dw_u32(w, n);
	airlock_dw_bytes(w, sig, n);
}

void airlock_dbus_close(airlock_dbus_writer *w) {
	if (w->err != NULL)
		return;
	if (w->depth == 0) {
		w->err = "dbus: close without an open container";
		return;
	}
	w->depth--;
	if (w->stack[w->depth].kind == 'a') {
		uint32_t n = w->stack[w->depth].values / w->stack[w->depth].per;
		airlock_dw_le(w->buf + w->stack[w->depth].count_off, n, 4);
	} else if (w->stack[w->depth].kind == '(') {
		airlock_dw_sig(w, ")");
	}
	airlock_dw_done(w);
}

void airlock_dbus_writer_free(airlock_dbus_writer *w) {
	free(w->buf);
	memset(w, 0, sizeof *w);
}

/* The decoder's arena: chunks freed together. */
struct airlock_chunk {
	struct airlock_chunk *next;
	size_t used, cap;
	uint64_t data[];
};

static void *airlock_arena_alloc(void **arena, size_t n) {
	n = (n + 7) & ~(size_t)7;
	struct airlock_chunk *c = (struct airlock_chunk *)*arena;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > 4096 ? n : 4096;
		struct airlock_chunk *nc = (struct airlock_chunk *)malloc(sizeof *nc + cap);
		if (nc == NULL)
			return NULL;
		nc->next = c;
		nc->used = 0;
		nc->cap = cap;
		*arena = c = nc;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

static void airlock_arena_free(void *arena) {
	for (struct airlock_chunk *c = (struct airlock_chunk *)arena, *next; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
}

/* airlock_dbus_type_len returns the length of the complete type at s, or 0. */
static size_t airlock_dbus_type_len(const char *s, int depth) {
	if (depth > AIRLOCK_DBUS_MAX_DEPTH || *s == 0)
		return 0;
	if (*s == 'a') {
		if (s[1] == '{') {
			size_t k = 1;
			if (s[2] == 0 || strchr("ybnqiuxtdsog", s[2]) == NULL)
				return 0;
			size_t v = airlock_dbus_type_len(s + 2 + k, depth + 1);
			if (v == 0 || s[2 + k + v] != '}')
				return 0;
			return 3 + k + v;
		}
		size_t e = airlock_dbus_type_len(s + 1, depth + 1);
		return e ? e + 1 : 0;
	}
	if (*s == '(') {
		size_t i = 1;
		while (s[i] != ')') {
			size_t n = airlock_dbus_type_len(s + i, depth + 1);
			if (n == 0)
				return 0;
			i += n;
		}
		return i > 1 ? i + 1 : 0;
	}
	return strchr("ybnqiuxtdsogv", *s) != NULL ? 1 : 0;
}

struct airlock_dbus_reader {
	const uint8_t *b;
	uint32_t n, off;
	void **arena;
};

static const uint8_t *airlock_dr_take(struct airlock_dbus_reader *r, uint32_t n) {
	if (n > r->n - r->off)
		return NULL;
	const uint8_t *p = r->b + r->off;
	r->off += n;
	return p;
}

static uint64_t airlock_dr_le(const uint8_t *p, int n) {
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int airlock_dr_value(struct airlock_dbus_reader *r, const char *t, size_t tl, airlock_dbus_value *v, int depth);

static int airlock_dr_string(struct airlock_dbus_reader *r, airlock_dbus_value *v) {
	const uint8_t *p = airlock_dr_take(r, 4);
	if (p == NULL)
		return 0;
	uint32_t n = (uint32_t)airlock_dr_le(p, 4);
	const uint8_t *s = airlock_dr_take(r, n);
	char *copy = s ? (char *)airlock_arena_alloc(r->arena, (size_t)n + 1) : NULL;
	if (copy == NULL)
		return 0;
	memcpy(copy, s, n);
	copy[n] = 0;
	v->str = copy;
	v->str_len = n;
	return 1;
}

static int airlock_dr_value(struct airlock_dbus_reader *r, const char *t, size_t tl, airlock_dbus_value *v, int depth) {
	memset(v, 0, sizeof *v);
	v->type = t[0];
	v->sig = t;
	v->sig_len = (uint32_t)tl;
	if (depth > AIRLOCK_DBUS_MAX_DEPTH)
		return 0;
	const uint8_t *p;
	switch (t[0]) {
	case 'y':
	case 'b':
		if ((p = airlock_dr_take(r, 1)) == NULL)
			return 0;
		if (t[0] == 'y')
			v->y = p[0];
		else if (p[0] > 1)
			return 0; /* a boolean is 0 or 1 */
		else
			v->b = p[0] == 1;
		return 1;
	case 'n':
	case 'q':
		if ((p = airlock_dr_take(r, 2)) == NULL)
			return 0;
		v->q = (uint16_t)airlock_dr_le(p, 2);
		return 1;
	case 'i':
	case 'u':
		if ((p = airlock_dr_take(r, 4)) == NULL)
			return 0;
		v->u = (uint32_t)airlock_dr_le(p, 4);
		return 1;
	case 'x':
	case 't':
	case 'd':
		if ((p = airlock_dr_take(r, 8)) == NULL)
			return 0;
		v->t = airlock_dr_le(p, 8);
		return 1;
	case 's':
	case 'o':
	case 'g':
		return airlock_dr_string(r, v);
	case 'v': {
		airlock_dbus_value sig;
		if (!airlock_dr_string(r, &sig) || airlock_dbus_type_len(sig.str, depth + 1) != sig.str_len)
			return 0;
		v->count = 1;
		v->items = (airlock_dbus_value *)airlock_arena_alloc(r->arena, sizeof *v->items);
		return v->items != NULL && airlock_dr_value(r, sig.str, sig.str_len, v->items, depth + 1);
	}
	case 'a': {
		if ((p = airlock_dr_take(r, 4)) == NULL)
			return 0;
		uint32_t n = (uint32_t)airlock_dr_le(p, 4);
		if (n > r->n - r->off) /* every element takes at least one byte */
			return 0;
		v->count = n;
		if (n == 0)
			return 1;
		v->items = (airlock_dbus_value *)airlock_arena_alloc(r->arena, (size_t)n * sizeof *v->items);
		if (v->items == NULL)
			return 0;
		for (uint32_t i = 0; i < n; i++)
			if (!airlock_dr_value(r, t + 1, tl - 1, &v->items[i], depth + 1))
				return 0;
		return 1;
	}
	case '(':
	case '{': {
		uint32_t n = 0;
		for (size_t i = 1; i + 1 < tl; i += airlock_dbus_type_len(t + i, depth + 1))
			n++;
		v->count = n;
		v->items = (airlock_dbus_value *)airlock_arena_alloc(r->arena, (size_t)n * sizeof *v->items);
		if (v->items == NULL)
			return 0;
		size_t i = 1;
		for (uint32_t k = 0; k < n; k++) {
			size_t l = airlock_dbus_type_len(t + i, depth + 1);
			if (!airlock_dr_value(r, t + i, l, &v->items[k], depth + 1))
				return 0;
			i += l;
		}
		return 1;
	}
	}
	return 0;
}

int32_t airlock_dbus_decode(const char *sig, const void *body, uint32_t len, airlock_dbus_values *out) {
	memset(out, 0, sizeof *out);
	out->signature = "";
	size_t sl = strlen(sig), n = 0;
	if (sl > 255)
		return AIRLOCK_INVALID;
	for (size_t i = 0, l; i < sl; i += l, n++)
		if ((l = airlock_dbus_type_len(sig + i, 0)) == 0)
			return AIRLOCK_INVALID;
	char *sigcopy = (char *)airlock_arena_alloc(&out->arena, sl + 1);
	airlock_dbus_value *vals = (airlock_dbus_value *)airlock_arena_alloc(&out->arena, (n ? n : 1) * sizeof *vals);
	if (sigcopy == NULL || vals == NULL) {
		airlock_dbus_values_free(out);
		return AIRLOCK_TOO_LARGE;
	}
	memcpy(sigcopy, sig, sl + 1);
	struct airlock_dbus_reader r = {(const uint8_t *)body, len, 0, &out->arena};
	size_t i = 0;
	for (size_t k = 0; k < n; k++) {
		size_t l = airlock_dbus_type_len(sigcopy + i, 0);
		if (!airlock_dr_value(&r, sigcopy + i, l, &vals[k], 0)) {
			airlock_dbus_values_free(out);
			return AIRLOCK_INVALID;
		}
		i += l;
	}
	if (r.off != len) {
		airlock_dbus_values_free(out);
		return AIRLOCK_INVALID;
	}
	out->signature = sigcopy;
	out->count = (uint32_t)n;
	out->values = vals;
	return AIRLOCK_OK;
}

void airlock_dbus_values_free(airlock_dbus_values *v) {
	airlock_arena_free(v->arena);
	memset(v, 0, sizeof *v);
	v->signature = "";
}

const airlock_dbus_value *airlock_dbus_inner(const airlock_dbus_value *v) {
	while (v->type == 'v')
		v = &v->items[0];
	return v;
}

const airlock_dbus_value *airlock_dbus_dict_get(const airlock_dbus_value *dict, const char *key) {
	for (uint32_t i = 0; dict->type == 'a' && i < dict->count; i++) {
		const airlock_dbus_value *e = &dict->items[i];
		if (e->type == '{' && e->items[0].str != NULL && strcmp(e->items[0].str, key) == 0)
			return &e->items[1];
	}
	return NULL;
}

/* A formatting sink with snprintf's semantics: it counts past cap. */
struct airlock_sink {
	char *buf;
	size_t cap, len;
};

static void airlock_sink_put(struct airlock_sink *s, const char *p, size_t n) {
	for (size_t i = 0; i < n; i++, s->len++)
		if (s->len + 1 < s->cap)
			s->buf[s->len] = p[i];
	if (s->cap > 0)
		s->buf[s->len < s->cap ? s->len : s->cap - 1] = 0;
}

static void airlock_sink_puts(struct airlock_sink *s, const char *p) { airlock_sink_put(s, p, strlen(p)); }

static void airlock_sink_printf(struct airlock_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void airlock_sink_printf(struct airlock_sink *s, const char *fmt, ...) {
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		airlock_sink_put(s, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* airlock_shortest writes the shortest %g form that reads back as d. */
static void airlock_shortest(char *out, size_t cap, double d) {
	for (int p = 1; p <= 17; p++) {
		snprintf(out, cap, "%.*g", p, d);
		if (strtod(out, NULL) == d)
			return;
	}
}

static void airlock_dbus_fmt(struct airlock_sink *s, const airlock_dbus_value *v) {
	char tmp[40];
	switch (v->type) {
	case 'y': airlock_sink_printf(s, "%u", (unsigned)v->y); return;
	case 'b': airlock_sink_puts(s, v->b ? "true" : "false"); return;
	case 'n': airlock_sink_printf(s, "%d", (int)v->n); return;
	case 'q': airlock_sink_printf(s, "%u", (unsigned)v->q); return;
	case 'i': airlock_sink_printf(s, "%ld", (long)v->i); return;
	case 'u': airlock_sink_printf(s, "%lu", (unsigned long)v->u); return;
	case 'x': airlock_sink_printf(s, "%lld", (long long)v->x); return;
	case 't': airlock_sink_printf(s, "%llu", (unsigned long long)v->t); return;
	case 'd': airlock_shortest(tmp, sizeof tmp, v->d); airlock_sink_puts(s, tmp); return;
	case 'o': airlock_sink_puts(s, "o"); break;
	case 'g': airlock_sink_puts(s, "g"); break;
	case 's': break;
	case 'v':
		airlock_sink_puts(s, "<");
		airlock_sink_put(s, v->items[0].sig, v->items[0].sig_len);
		airlock_sink_puts(s, " ");
		airlock_dbus_fmt(s, &v->items[0]);
		airlock_sink_puts(s, ">");
		return;
	case '{':
		airlock_dbus_fmt(s, &v->items[0]);
		airlock_sink_puts(s, ": ");
		airlock_dbus_fmt(s, &v->items[1]);
		return;
	default: {
		bool dict = v->type == 'a' && v->sig_len > 1 && v->sig[1] == '{';
		airlock_sink_puts(s, v->type == '(' ? "(" : dict ? "{" : "[");
		for (uint32_t i = 0; i < v->count; i++) {
			if (i > 0)
				airlock_sink_puts(s, ", ");
			airlock_dbus_fmt(s, &v->items[i]);
		}
		airlock_sink_puts(s, v->type == '(' ? ")" : dict ? "}" : "]");
		return;
	}
	}
	airlock_sink_puts(s, "\"");
	airlock_sink_put(s, v->str, v->str_len);
	airlock_sink_puts(s, "\"");
}

size_t airlock_dbus_format(const airlock_dbus_value *v, char *buf, size_t cap) {
	struct airlock_sink s = {buf, cap, 0};
	if (cap > 0)
		buf[0] = 0;
	airlock_dbus_fmt(&s, v);
	return s.len;
}

size_t airlock_dbus_format_values(const airlock_dbus_values *v, char *buf, size_t cap) {
	struct airlock_sink s = {buf, cap, 0};
	if (cap > 0)
		buf[0] = 0;
	for (uint32_t i = 0; i < v->count; i++) {
		if (i > 0)
			airlock_sink_puts(&s, ", ");
		airlock_dbus_fmt(&s, &v->values[i]);
	}
	return s.len;
}

typedef int32_t (*airlock_dbus_raw)(const void *, uint32_t, void *, uint32_t, uint32_t *);

struct airlock_dbus_args {
	airlock_dbus_raw fn;
	const airlock_record_builder *req;
};

static int32_t airlock_dbus_rawcall(void *ctx, void *out, uint32_t cap, uint32_t *n) {
	struct airlock_dbus_args *a = (struct airlock_dbus_args *)ctx;
	return a->fn(a->req->buf, a->req->len, out, cap, n);
}

/* airlock_dbus_request starts a request: the common fields of o and the
 * interface of "interface.Member"; *member points at Member. */
static int airlock_dbus_request(airlock_record_builder *b, const airlock_dbus_object *o, const char *method,
                                const char **member) {
	const char *dot = strrchr(method, '.');
	if (dot == NULL || dot == method || dot[1] == 0)
		return 0;
	airlock_record_adds(b, "destination", o->destination);
	airlock_record_adds(b, "path", o->path);
	airlock_record_add(b, "interface", method, (uint32_t)(dot - method));
	if (o->timeout_ms > 0) {
		char ms[16];
		snprintf(ms, sizeof ms, "%lu", (unsigned long)o->timeout_ms);
		airlock_record_adds(b, "timeout_ms", ms);
	}
	*member = dot + 1;
	return 1;
}

static int airlock_dbus_put_args(airlock_record_builder *b, const airlock_dbus_writer *w) {
	if (w == NULL)
		return 1;
	if (w->err != NULL || w->depth != 0)
		return 0;
	airlock_record_adds(b, "signature", w->sig);
	airlock_record_add(b, "body", w->buf, w->len);
	return 1;
}

static airlock_result airlock_dbus_send(airlock_dbus_raw fn, airlock_record_builder *b, airlock_dbus_values *out) {
	if (out != NULL) {
		memset(out, 0, sizeof *out);
		out->signature = "";
	}
	if (b->oom) {
		airlock_record_builder_free(b);
		return airlock_result_msg(AIRLOCK_TOO_LARGE, "dbus: out of memory building the request");
	}
	airlock_record_adds(b, "errors", "record"); /* the error name as a field */
	struct airlock_dbus_args a = {fn, b};
	airlock_result r = airlock_call(airlock_dbus_rawcall, &a);
	airlock_record_builder_free(b);
	airlock_record rec;
	if (r.err != AIRLOCK_OK && r.data != NULL && airlock_record_decode(r.data, r.len, &rec) == AIRLOCK_OK) {
		/* An error record: message, then error_name from the peer. A
		 * host before error records sends the message alone. */
		if (rec.count > 0 && strcmp(rec.fields[0].key, "message") == 0) {
			const char *name = airlock_record_get(&rec, "error_name");
			size_t ml = rec.fields[0].value_len, nl = name ? strlen(name) : 0;
			char *d = (char *)malloc(ml + nl + 2);
			if (d != NULL) {
				memcpy(d, rec.fields[0].value, ml);
				d[ml] = 0;
				memcpy(d + ml + 1, name ? name : "", nl + 1);
				free(r.data);
				r.data = d;
				r.len = (uint32_t)ml;
				r.name = name ? d + ml + 1 : NULL;
			}
		}
		airlock_record_free(&rec);
	}
	if (r.err != AIRLOCK_OK || r.data == NULL)
		return r;
	if (airlock_record_decode(r.data, r.len, &rec) != AIRLOCK_OK) {
		airlock_result_free(&r);
		return airlock_result_msg(AIRLOCK_FAILED, "dbus: bad reply record: abi: malformed record");
	}
	r.data[0] = 0;
	r.len = 0;
	const char *sig = airlock_str(airlock_record_get(&rec, "signature"));
	const void *body = NULL;
	uint32_t body_len = 0;
	for (uint32_t i = 0; i < rec.count; i++)
		if (strcmp(rec.fields[i].key, "body") == 0) {
			body = rec.fields[i].value;
			body_len = rec.fields[i].value_len;
			break;
		}
	if (out != NULL && airlock_dbus_decode(sig, body, body_len, out) != AIRLOCK_OK) {
		airlock_result_free(&r);
		r = airlock_result_msg(AIRLOCK_FAILED, "dbus: undecodable reply of signature \"%s\"", sig);
	}
	airlock_record_free(&rec);
	return r;
}

airlock_result airlock_dbus_call(const airlock_dbus_object *o, const char *method, const airlock_dbus_writer *args,
                                 airlock_dbus_values *reply) {
	airlock_record_builder b = {0};
	const char *member;
	if (!airlock_dbus_request(&b, o, method, &member)) {
		airlock_record_builder_free(&b);
		return airlock_result_msg(AIRLOCK_INVALID, "\"%s\" is not interface.member", method);
	}
	airlock_record_adds(&b, "member", member);
	if (!airlock_dbus_put_args(&b, args)) {
		airlock_record_builder_free(&b);
		return airlock_result_msg(AIRLOCK_INVALID, "%s", args->err ? args->err : "dbus: a container is not closed");
	}
	return airlock_dbus_send(airlock_raw_dbus_call, &b, reply);
}

airlock_result airlock_dbus_get_property(const airlock_dbus_object *o, const char *property, airlock_dbus_values *value) {
	airlock_record_builder b = {0};
	const char *name;
	if (!airlock_dbus_request(&b, o, property, &name)) {
		airlock_record_builder_free(&b);
		return airlock_result_msg(AIRLOCK_INVALID, "\"%s\" is not interface.name", property);
	}
	airlock_record_adds(&b, "name", name);
	return airlock_dbus_send(airlock_raw_dbus_get_property, &b, value);
}

airlock_result airlock_dbus_get_all_properties(const airlock_dbus_object *o, const char *iface, airlock_dbus_values *props) {
	airlock_dbus_object oo = *o;
	airlock_record_builder b = {0};
	airlock_record_adds(&b, "destination", oo.destination);
	airlock_record_adds(&b, "path", oo.path);
	airlock_record_adds(&b, "interface", iface);
	if (oo.timeout_ms > 0) {
		char ms[16];
		snprintf(ms, sizeof ms, "%lu", (unsigned long)oo.timeout_ms);
		airlock_record_adds(&b, "timeout_ms", ms);
	}
	return airlock_dbus_send(airlock_raw_dbus_get_all_properties, &b, props);
}

airlock_result airlock_dbus_set_property(const airlock_dbus_object *o, const char *property, const airlock_dbus_writer *value) {
	airlock_record_builder b = {0};
	const char *name;
	if (!airlock_dbus_request(&b, o, property, &name)) {
		airlock_record_builder_free(&b);
		return airlock_result_msg(AIRLOCK_INVALID, "\"%s\" is not interface.name", property);
	}
	airlock_record_adds(&b, "name", name);
	if (!airlock_dbus_put_args(&b, value)) {
		airlock_record_builder_free(&b);
		return airlock_result_msg(AIRLOCK_INVALID, "%s", value->err ? value->err : "dbus: a container is not closed");
	}
	return airlock_dbus_send(airlock_raw_dbus_set_property, &b, NULL);
}

const char *airlock_dbus_error_name(const airlock_result *r, char *buf, size_t cap) {
	if (cap == 0)
		return buf;
	buf[0] = 0;
	if (r->err != AIRLOCK_OK && r->name != NULL && strlen(r->name) < cap)
		strcpy(buf, r->name);
	return buf;
}

static int (*airlock_dbus_signal_fn)(const airlock_dbus_signal *);

static int airlock_dbus_signal_tramp(const airlock_event *e) {
	const airlock_record *r = &e->fields;
	airlock_dbus_signal s;
	s.sender = airlock_str(airlock_record_get(r, "sender"));
	s.sender_name = airlock_str(airlock_record_get(r, "sender_name"));
	s.path = airlock_str(airlock_record_get(r, "path"));
	s.interface = airlock_str(airlock_record_get(r, "interface"));
	s.member = airlock_str(airlock_record_get(r, "member"));
	s.rule = airlock_str(airlock_record_get(r, "rule"));
	s.signature = airlock_str(airlock_record_get(r, "signature"));
	const void *body = NULL;
	uint32_t body_len = 0;
	for (uint32_t i = 0; i < r->count; i++)
		if (strcmp(r->fields[i].key, "body") == 0) {
			body = r->fields[i].value;
			body_len = r->fields[i].value_len;
			break;
		}
	if (airlock_dbus_decode(s.signature, body, body_len, &s.body) != AIRLOCK_OK)
		return airlock_fail("dbus: undecodable signal body");
	int rc = airlock_dbus_signal_fn(&s);
	airlock_dbus_values_free(&s.body);
	return rc;
}

void airlock_on_dbus_signal(int (*h)(const airlock_dbus_signal *)) {
	airlock_dbus_signal_fn = h;
	airlock_on(AIRLOCK_EVENT_DBUS_SIGNAL, airlock_dbus_signal_tramp);
}

/* The version marker: the host refuses a module without it. */
__attribute__((export_name("airlock_abi_v1"))) void airlock_abi_v1(void) {}

/* The event entry point: read the payload (the pending result), decode it
 * and run the handler for kind. */
__attribute__((export_name("airlock_on_event"))) int32_t airlock_on_event(int32_t kind, int32_t len) {
	airlock_handler h = (uint32_t)kind < AIRLOCK_EVENT_MAX ? airlock_handlers[kind] : NULL;
	if (h == NULL) {
		if (kind == AIRLOCK_EVENT_DROPPED)
			airlock_warn("events dropped and no OnDropped handler");
		return 0;
	}
	airlock_event ev = {(uint32_t)kind, {0, NULL, NULL}};
	if (len > 0) {
		uint8_t *buf = (uint8_t *)malloc((size_t)(uint32_t)len);
		uint32_t got = 0;
		int32_t e = buf ? airlock_raw_result_read(buf, (uint32_t)len, &got) : AIRLOCK_TOO_LARGE;
		if (e != AIRLOCK_OK) {
			free(buf);
			airlock_errorf("reading event payload: %s: result_read", airlock_errno_name(e));
			return 1;
		}
		e = airlock_record_decode(buf, (uint32_t)len, &ev.fields);
		free(buf);
		if (e != AIRLOCK_OK) {
			airlock_error("decoding event payload: abi: malformed record");
			return 1;
		}
	}
	airlock_fail_msg = NULL;
	int rc = h(&ev);
	airlock_record_free(&ev.fields);
	if (rc != 0) {
		airlock_errorf("%s handler: %s", airlock_event_name((uint32_t)kind), airlock_fail_msg ? airlock_fail_msg : "failed");
		airlock_fail_msg = NULL;
		return 1;
	}
	return 0;
}

int airlock_write_file_atomic(const char *path, const void *data, size_t n) {
	size_t len = strlen(path);
	char *tmp = malloc(len + sizeof ".tmp-airlock");
	if (!tmp)
		return -1;
	memcpy(tmp, path, len);
	memcpy(tmp + len, ".tmp-airlock", sizeof ".tmp-airlock");
	FILE *f = fopen(tmp, "wb");
	int ok = f != NULL;
	ok = ok && fwrite(data, 1, n, f) == n;
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (f && fclose(f) != 0)
		ok = 0;
	ok = ok && rename(tmp, path) == 0;
	if (!ok) {
		int e = errno;
		remove(tmp);
		errno = e;
	}
	free(tmp);
	return ok ? 0 : -1;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct airlock_http_args {
	const airlock_record_builder *req;
	const void *body;
	size_t body_len;
};

static int32_t airlock_http_raw(void *ctx, void *out, uint32_t cap, uint32_t *n) {
	struct airlock_http_args *a = (struct airlock_http_args *)ctx;
	return airlock_raw_http_request(a->req->buf, a->req->len, a->body, (uint32_t)a->body_len, out, cap, n);
}

static int airlock_http_lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

airlock_result airlock_http_do(const airlock_http_request *req, airlock_http_response *out) {
	memset(out, 0, sizeof *out);
	out->content_length = -1;
	out->url = "";
	airlock_record_builder b = {0};
	airlock_record_adds(&b, "method", req->method != NULL && *req->method ? req->method : "GET");
	airlock_record_adds(&b, "url", req->url);
	for (size_t i = 0; i < req->header_count; i++) {
		const char *h = req->headers[i];
		const char *colon = strchr(h, ':');
		if (colon == NULL) {
			airlock_record_builder_free(&b);
			return airlock_result_msg(AIRLOCK_INVALID, "http: header %s has no ':'", h);
		}
		size_t kn = (size_t)(colon - h);
		char *key = (char *)malloc(kn + 8);
		if (key == NULL) {
			b.oom = true;
			break;
		}
		memcpy(key, "header.", 7);
		memcpy(key + 7, h, kn);
		key[kn + 7] = 0;
		const char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		airlock_record_adds(&b, key, v);
		free(key);
	}
	struct airlock_http_args a = {&b, req->body, req->body_len};
	airlock_result r = b.oom ? airlock_result_msg(AIRLOCK_TOO_LARGE, "http %s: out of memory", req->url)
	                         : airlock_call(airlock_http_raw, &a);
	airlock_record_builder_free(&b);
	if (r.err != AIRLOCK_OK || r.data == NULL)
		return r;
	int32_t e = airlock_record_decode(r.data, r.len, &out->record);
	airlock_result_free(&r);
	if (e != AIRLOCK_OK)
		return airlock_result_msg(AIRLOCK_FAILED, "http: malformed reply");
	const char *v;
	if ((v = airlock_record_get(&out->record, "status")) != NULL)
		out->status = atoi(v);
	if ((v = airlock_record_get(&out->record, "url")) != NULL)
		out->url = v;
	if ((v = airlock_record_get(&out->record, "content_length")) != NULL)
		out->content_length = strtoll(v, NULL, 10);
	out->body = airlock_record_get(&out->record, "body");
	r.err = AIRLOCK_OK;
	return r;
}

const char *airlock_http_header(const airlock_http_response *r, const char *name) {
	for (uint32_t i = 0; i < r->record.count; i++) {
		const char *k = r->record.fields[i].key;
		if (strncmp(k, "header.", 7) != 0)
			continue;
		k += 7;
		const char *n = name;
		while (*k && *n && airlock_http_lower((unsigned char)*k) == airlock_http_lower((unsigned char)*n))
			k++, n++;
		if (*k == 0 && *n == 0)
			return r->record.fields[i].value;
	}
	return NULL;
}

/* airlock_http_close_body closes the body's handle; its message, if any,
 * is of no use to a caller that is done with the body. */
static void airlock_http_close_body(airlock_http_response *r) {
	if (r->body == NULL)
		return;
	char msg[64];
	uint32_t got = 0;
	airlock_raw_http_body_close(r->body, (uint32_t)strlen(r->body), msg, sizeof msg, &got);
	r->body = NULL;
}

airlock_result airlock_http_read(airlock_http_response *r, void *buf, uint32_t cap, uint32_t *n) {
	airlock_result res = {0, NULL, 0};
	*n = 0;
	if (r->body == NULL) {
		res.err = AIRLOCK_OK; /* closed or read to its end */
		return res;
	}
	uint32_t got = 0;
	int32_t e = airlock_raw_http_body_read(r->body, (uint32_t)strlen(r->body), buf, cap, &got);
	if (e == AIRLOCK_OK) {
		*n = got;
		if (got == 0)
			airlock_http_close_body(r);
		return res;
	}
	r->body = NULL; /* the host closed it */
	if (e == AIRLOCK_FAULT || got > cap)
		return airlock_result_msg(e, "http: reading the body failed (%s)", airlock_errno_name(e));
	return airlock_result_msg(e, "%.*s", (int)got, (const char *)buf);
}

void airlock_http_response_free(airlock_http_response *r) {
	airlock_http_close_body(r);
	airlock_record_free(&r->record);
}

#endif /* AIRLOCK_IMPLEMENTATION */
#endif /* AIRLOCK_H */
