/*
 * wire.c: the C SDK's codecs against the ABI's wire table
 * (abi/testdata/wire.txt, which the host's and every SDK's tests read).
 * Every record and dbus row decodes to its text and encodes back to its
 * bytes and signature; every bad-record and bad-dbus row is refused.
 *
 * A WASI command: the table on stdin, a line per failing row on stdout,
 * exit status 1 if any row fails. internal/conformance's TestWireTable builds
 * it with clang for wasm32-wasi and runs it.
 */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, rows;

static void fail(int line, const char *what, const char *got, const char *want) {
	printf("wire.txt:%d: %s: got %s, want %s\n", line, what, got, want);
	failures++;
}

static uint8_t *unhex(const char *s, uint32_t *n) {
	size_t l = strlen(s);
	uint8_t *b = malloc(l / 2 + 1);
	for (size_t i = 0; i + 1 < l; i += 2) {
		unsigned v;
		sscanf(s + i, "%2x", &v);
		b[i / 2] = (uint8_t)v;
	}
	*n = (uint32_t)(l / 2);
	return b;
}

static char *dup_n(const char *s, uint32_t n) {
	char *d = malloc(n + 1);
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

/* put writes a decoded value back with the writer. */
static void put(airlock_dbus_writer *w, const airlock_dbus_value *v) {
	char *sig;
	switch (v->type) {
	case 'y': airlock_dbus_put_byte(w, v->y); break;
	case 'b': airlock_dbus_put_bool(w, v->b); break;
	case 'n': airlock_dbus_put_int16(w, v->n); break;
	case 'q': airlock_dbus_put_uint16(w, v->q); break;
	case 'i': airlock_dbus_put_int32(w, v->i); break;
	case 'u': airlock_dbus_put_uint32(w, v->u); break;
	case 'x': airlock_dbus_put_int64(w, v->x); break;
	case 't': airlock_dbus_put_uint64(w, v->t); break;
	case 'd': airlock_dbus_put_double(w, v->d); break;
	case 's': airlock_dbus_put_string(w, v->str); break;
	case 'o': airlock_dbus_put_object_path(w, v->str); break;
	case 'g': airlock_dbus_put_signature(w, v->str); break;
	case 'a':
		sig = dup_n(v->sig + 1, v->sig_len - 1);
		airlock_dbus_open_array(w, sig);
		free(sig);
		for (uint32_t i = 0; i < v->count; i++) {
			if (v->items[i].type == '{') {
				put(w, &v->items[i].items[0]);
				put(w, &v->items[i].items[1]);
			} else {
				put(w, &v->items[i]);
			}
		}
		airlock_dbus_close(w);
		break;
	case '(':
		airlock_dbus_open_struct(w);
		for (uint32_t i = 0; i < v->count; i++)
			put(w, &v->items[i]);
		airlock_dbus_close(w);
		break;
	case 'v':
		sig = dup_n(v->items[0].sig, v->items[0].sig_len);
		airlock_dbus_open_variant(w, sig);
		free(sig);
		put(w, &v->items[0]);
		airlock_dbus_close(w);
		break;
	}
}

static void record_row(int line, const uint8_t *b, uint32_t n, const char *text, bool good) {
	airlock_record r;
	int32_t err = airlock_record_decode(b, n, &r);
	if (!good) {
		if (err == AIRLOCK_OK)
			fail(line, "bad record", "decoded", "refused");
		return;
	}
	if (err != AIRLOCK_OK) {
		fail(line, "record", "refused", text);
		return;
	}
	char got[4096] = "";
	size_t off = 0;
	airlock_record_builder rb = {0};
	for (uint32_t i = 0; i < r.count; i++) {
		off += snprintf(got + off, sizeof got - off, "%s%s=%s", i ? ", " : "", r.fields[i].key, r.fields[i].value);
		airlock_record_add(&rb, r.fields[i].key, r.fields[i].value, r.fields[i].value_len);
	}
	if (strcmp(got, text) != 0)
		fail(line, "record text", got, text);
	/* An empty builder holds no bytes: req_len 0 is the empty record. */
	bool same = rb.len == 0 ? n == 4 && r.count == 0 : rb.len == n && memcmp(rb.buf, b, n) == 0;
	if (!same)
		fail(line, "record re-encoded", "other bytes", "the row's");
	airlock_record_builder_free(&rb);
	airlock_record_free(&r);
}

static void dbus_row(int line, const char *sig, const uint8_t *b, uint32_t n, const char *text, bool good) {
	airlock_dbus_values vals;
	int32_t err = airlock_dbus_decode(sig, b, n, &vals);
	if (!good) {
		if (err == AIRLOCK_OK) {
			fail(line, "bad dbus body", "decoded", text);
			airlock_dbus_values_free(&vals);
		}
		return;
	}
	if (err != AIRLOCK_OK) {
		fail(line, "dbus", "refused", text);
		return;
	}
	static char got[8192];
	airlock_dbus_format_values(&vals, got, sizeof got);
	if (strcmp(got, text) != 0)
		fail(line, "dbus text", got, text);
	airlock_dbus_writer w = {0};
	for (uint32_t i = 0; i < vals.count; i++)
		put(&w, &vals.values[i]);
	if (w.err || w.sig_len != strlen(sig) || memcmp(w.sig, sig, w.sig_len) != 0 || w.len != n ||
	    (n > 0 && memcmp(w.buf, b, n) != 0))
		fail(line, "dbus re-encoded", w.err ? w.err : "other bytes or signature", "the row's");
	airlock_dbus_writer_free(&w);
	airlock_dbus_values_free(&vals);
}

int main(void) {
	size_t cap = 1 << 16, len = 0, r;
	char *in = malloc(cap);
	while ((r = fread(in + len, 1, cap - len - 1, stdin)) > 0)
		if ((len += r) == cap - 1)
			in = realloc(in, cap *= 2);
	in[len] = 0;
	int line = 0;
	for (char *s = in, *next; s && *s; s = next) {
		line++;
		next = strchr(s, '\n');
		if (next)
			*next++ = 0;
		if (*s == 0 || *s == '#')
			continue;
		char *f[4];
		int nf = 0;
		for (char *p = s; nf < 4; p = NULL)
			if (!(f[nf++] = strtok(p, "\t")))
				break;
		if (nf != 4 || !f[3]) {
			fail(line, "row", "not 4 fields", "4 separated by tabs");
			continue;
		}
		for (int i = 0; i < 4; i++)
			if (strcmp(f[i], "-") == 0)
				f[i] = "";
		uint32_t n;
		uint8_t *b = unhex(f[2], &n);
		rows++;
		if (strcmp(f[0], "record") == 0 || strcmp(f[0], "bad-record") == 0)
			record_row(line, b, n, f[3], f[0][0] != 'b');
		else if (strcmp(f[0], "dbus") == 0 || strcmp(f[0], "bad-dbus") == 0)
			dbus_row(line, f[1], b, n, f[3], f[0][0] != 'b');
		else if (strcmp(f[0], "bad-dbus-host") != 0) /* the host's alone */
			fail(line, "kind", f[0], "record, bad-record, dbus, bad-dbus or bad-dbus-host");
		free(b);
	}
	if (rows == 0)
		fail(line, "table", "no rows", "some");
	printf("%d rows, %d failing\n", rows, failures);
	return failures ? 1 : 0;
}
