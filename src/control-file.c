/*
 * control-file.c: put, get and stat on the controller side.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

static void
file_unavailable(struct req *r)
{
	req_error(r, "unknown_op", "op '%s' is not available yet", r->op);
}

void control_file_put(struct req *r) { file_unavailable(r); }
void control_file_get(struct req *r) { file_unavailable(r); }
void control_file_stat(struct req *r) { file_unavailable(r); }
void control_file_get_drain(struct chan *c) { (void)c; }
void control_file_started(struct chan *c, json_t *m) { (void)c; (void)m; }
void control_file_output(struct chan *c) { (void)c; }
void control_file_freed(struct chan *c) { (void)c; }
void control_cmd_payload_done(struct client *cl, struct chan *c) { (void)cl; (void)c; }
