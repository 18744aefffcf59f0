/* hello-c is the smallest airlock plugin, in C: it greets on start, using
 * a value from its manifest's [config], and says goodbye on stop. */
#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"

#include <stdlib.h>

static int on_start(void) {
	airlock_result greeting = airlock_config("greeting");
	const char *device_type = getenv("BALENA_DEVICE_TYPE");
	airlock_infof("%s from a sandboxed plugin device_type=%s",
	              greeting.err == AIRLOCK_OK ? greeting.data : "hello", device_type ? device_type : "");
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
