/*
 * worker-session.c: PTY sessions on the worker.
 */
#include "sandd.h"
#include "job.h"

void
worker_session_open(uint32_t ch, json_t *open)
{
	struct job	*j = job_create(ch, CHAN_SESSION, NULL);

	(void)open;
	job_fail(j, "unknown_op", 0, "sessions are not available yet");
}

void
worker_session_rpc(const char *op, json_t *msg)
{
	worker_reply_error(msg, "unknown_op", 0, "op '%s' is not available "
	    "yet", op);
}
