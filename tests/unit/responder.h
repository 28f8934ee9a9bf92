/* responder.h - a scripted HTTP/1.1 server on 127.0.0.1 (port 0) running in
 * the test process, for the client tests (test_client_http, test_oauth).
 *
 * Every request is logged (method, path, Authorization, Content-Type, body,
 * arrival time), then answered by the test's handler, after an optional
 * gate (a strict rate limit, say) that may answer it first. One thread per
 * connection; keep-alive honoured. */
#ifndef HUBFS_TESTS_RESPONDER_H
#define HUBFS_TESTS_RESPONDER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SRV_MAXLOG 512
#define SRV_MAXCONN 128

struct srv_req {
	char method[16];
	char path[4096];
	char auth[1024];     /* the Authorization value */
	char ctype[128];     /* the Content-Type value */
	char *body;
	int64_t at_ms;       /* hs_now_ms() at arrival */
};

struct srv_reply {
	int status;          /* 200 unless set */
	char headers[1024];  /* extra header lines, each ending in \r\n */
	char body[8192];
	const char *ctype;   /* "application/json" unless set */
	int delay_ms;        /* wait this long before answering (cut short by stop) */
	bool drop;           /* close the connection instead of answering (a server
			      * that acted and lost the connection) */
};

struct server;
/* Answer request r, the nth logged (0-based); runs on a connection thread. */
typedef void (*handler_fn)(struct server *s, const struct srv_req *r, int nth, struct srv_reply *rep);
/* Answer r before the handler and return true, or return false to let it through. */
typedef bool (*gate_fn)(struct server *s, const struct srv_req *r, struct srv_reply *rep);

struct server {
	int port;
	pthread_mutex_t lock;              /* guards log, nlog and the test's own state */
	struct srv_req log[SRV_MAXLOG];
	int nlog;
	handler_fn handler;                /* set before requests arrive */
	gate_fn gate;                      /* optional */
	void *user;                        /* the test's own state */
	/* private */
	int lfd;
	pthread_t thr;
	atomic_bool stop;
	pthread_t cthr[SRV_MAXCONN];       /* only the accept thread touches these */
	int ncthr;
};

/* Listen on 127.0.0.1, port 0, and serve until server_stop, answering with
 * gate (may be NULL) and h; user is the test's own state. Aborts the test on
 * failure. */
struct server *server_start(handler_fn h, gate_fn gate, void *user);
/* Stop serving, join every thread, free the log and s. */
void server_stop(struct server *s);
/* Requests logged so far. */
int server_nlog(struct server *s);
/* Requests to path (NULL = any) logged so far. */
int server_count(struct server *s, const char *path);

#endif
