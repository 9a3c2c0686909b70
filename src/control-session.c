/*
 * control-session.c: PTY sessions on the controller side.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

static void
session_unavailable(struct req *r)
{
	req_error(r, "unknown_op", "op '%s' is not available yet", r->op);
}

void control_session_open(struct req *r) { session_unavailable(r); }
void control_session_attach(struct req *r) { session_unavailable(r); }
void control_session_detach(struct req *r) { session_unavailable(r); }
void control_session_write(struct req *r) { session_unavailable(r); }
void control_session_resize(struct req *r) { session_unavailable(r); }
void control_session_read(struct req *r) { session_unavailable(r); }
void control_session_run(struct req *r) { session_unavailable(r); }
void control_session_close(struct req *r) { session_unavailable(r); }
void control_session_list(struct req *r) { session_unavailable(r); }
void control_session_signal(struct req *r, const char *sig) { (void)sig; session_unavailable(r); }
void control_session_client_gone(struct client *cl) { (void)cl; }
void control_session_client_drained(struct client *cl) { (void)cl; }
void control_session_output(struct chan *c) { (void)c; }
void control_session_event(struct chan *c, const char *t, json_t *m) { (void)c; (void)t; (void)m; }
void control_session_lost(struct chan *c, const char *why) { (void)c; (void)why; }
void control_session_freed(struct chan *c) { (void)c; }
void control_cmd_session_adopted(struct chan *c, json_t *a) { (void)c; (void)a; }
