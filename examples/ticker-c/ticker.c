/* ticker-c shows timers, in C: it counts the ticks of its timers and keeps
 * the count in the plugin's private /data directory, so that it survives
 * restarts. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <stdio.h>

#define COUNT_FILE "/data/count"

static int on_timer(const airlock_timer *t) {
	long n = 0;
	FILE *f = fopen(COUNT_FILE, "r");
	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	n++;
	if (!(f = fopen(COUNT_FILE, "w")))
		return airlock_fail("cannot write " COUNT_FILE);
	fprintf(f, "%ld", n);
	if (fclose(f) != 0)
		return airlock_fail("cannot write " COUNT_FILE);
	char count[24];
	snprintf(count, sizeof count, "%ld", n);
	airlock_infokv("tick", "timer", t->name, "count", count, NULL);
	return 0;
}

static int on_dropped(const airlock_dropped *d) {
	char count[24];
	snprintf(count, sizeof count, "%llu", (unsigned long long)d->count);
	airlock_warnkv("missed ticks", "count", count, NULL);
	return 0;
}

AIRLOCK_INIT {
	airlock_on_timer(on_timer);
	airlock_on_dropped(on_dropped);
}
