/* hello-c is the smallest airlock plugin, in C: it greets on start, using
 * a value from its manifest's [config], and says goodbye on stop. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <stdio.h>
#include <stdlib.h>

static int on_start(void) {
	airlock_result greeting = airlock_config("greeting");
	const char *device_type = getenv("BALENA_DEVICE_TYPE");
	char msg[256];
	snprintf(msg, sizeof msg, "%s from a sandboxed plugin", greeting.err == AIRLOCK_OK ? greeting.data : "hello");
	airlock_infokv(msg, "device_type", device_type ? device_type : "", NULL);
	airlock_result_free(&greeting);
	return 0;
}

static int on_stop(void) {
	airlock_info("goodbye");
	return 0;
}

AIRLOCK_INIT {
	airlock_on_start(on_start);
	airlock_on_stop(on_stop);
}
