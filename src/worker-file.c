/*
 * worker-file.c: file transfers on the worker.
 */
#include "sandd.h"
#include "job.h"

void
worker_file_open(uint32_t ch, int kind, json_t *open)
{
	struct job	*j = job_create(ch, kind, NULL);

	(void)open;
	job_fail(j, "unknown_op", 0, "files are not available yet");
}

void
worker_file_stat(json_t *msg)
{
	worker_reply_error(msg, "unknown_op", 0, "stat is not available yet");
}
