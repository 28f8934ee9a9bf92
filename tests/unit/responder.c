/* responder.c - the scripted HTTP/1.1 server of responder.h. */
#include "tests/unit/responder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/hubspot.h"
#include "tests/unit/test.h"

#define BUF_MAX 65536

struct conn {
	struct server *s;
	int fd;
};

static bool wait_readable(struct server *s, int fd)
{
	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 20);

		if (r > 0)
			return true;
		if (r < 0 && errno != EINTR)
			return false;
	}
	return false;
}

/* Read into buf until it holds want bytes (want 0: a whole header block).
 * Returns false on EOF, error, stop or overflow. */
static bool fill(struct server *s, int fd, char *buf, size_t *have, size_t want)
{
	while (want ? *have < want : !memmem(buf, *have, "\r\n\r\n", 4)) {
		ssize_t k;

		if (*have >= BUF_MAX - 1 || !wait_readable(s, fd))
			return false;
		k = recv(fd, buf + *have, BUF_MAX - 1 - *have, 0);
		if (k <= 0)
			return false;
		*have += (size_t)k;
	}
	return true;
}

static void copy_value(char *dst, size_t cap, const char *line, size_t name_len)
{
	line += name_len;
	while (*line == ' ')
		line++;
	snprintf(dst, cap, "%s", line);
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct server *s = cn->s;
	int fd = cn->fd;
	char *buf = malloc(BUF_MAX), *out = malloc(BUF_MAX / 4);
	size_t have = 0;

	free(cn);
	ASSERT(buf != NULL && out != NULL);
	for (;;) {
		char head[8192], *line, *save = NULL;
		size_t hlen, clen = 0;
		struct srv_req r = { 0 };
		struct srv_reply rep = { .status = 200, .ctype = "application/json" };
		int n, nth;

		if (!fill(s, fd, buf, &have, 0))
			break;
		hlen = (size_t)((char *)memmem(buf, have, "\r\n\r\n", 4) - buf) + 4;
		if (hlen >= sizeof(head))
			break;
		memcpy(head, buf, hlen);
		head[hlen] = '\0';
		line = strtok_r(head, "\r\n", &save);
		if (!line || sscanf(line, "%15s %4095s", r.method, r.path) != 2)
			break;
		while ((line = strtok_r(NULL, "\r\n", &save))) {
			if (strncasecmp(line, "Content-Length:", 15) == 0)
				clen = strtoul(line + 15, NULL, 10);
			else if (strncasecmp(line, "Authorization:", 14) == 0)
				copy_value(r.auth, sizeof(r.auth), line, 14);
			else if (strncasecmp(line, "Content-Type:", 13) == 0)
				copy_value(r.ctype, sizeof(r.ctype), line, 13);
		}
		if (hlen + clen >= BUF_MAX || !fill(s, fd, buf, &have, hlen + clen))
			break;
		r.body = strndup(buf + hlen, clen);
		r.at_ms = hs_now_ms();
		memmove(buf, buf + hlen + clen, have - hlen - clen);
		have -= hlen + clen;

		pthread_mutex_lock(&s->lock);
		nth = s->nlog;
		if (s->nlog < SRV_MAXLOG)
			s->log[s->nlog++] = r;
		pthread_mutex_unlock(&s->lock);
		if (!(s->gate && s->gate(s, &r, &rep)) && s->handler)
			s->handler(s, &r, nth, &rep);
		if (nth >= SRV_MAXLOG)
			free(r.body);
		for (int waited = 0; waited < rep.delay_ms && !atomic_load(&s->stop); waited += 10)
			usleep(10000);
		if (rep.drop)
			break;
		n = snprintf(out, BUF_MAX / 4,
			     "HTTP/1.1 %d Test\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
			     rep.status, rep.ctype, strlen(rep.body), rep.headers, rep.body);
		if (n < 0 || n >= BUF_MAX / 4 || send(fd, out, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	}
	free(buf);
	free(out);
	close(fd);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct server *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->lfd, .events = POLLIN };
		struct conn *cn;
		int fd;

		if (poll(&p, 1, 20) <= 0)
			continue;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (s->ncthr >= SRV_MAXCONN) {
			close(fd);
			continue;
		}
		cn = malloc(sizeof(*cn));
		ASSERT(cn != NULL);
		cn->s = s;
		cn->fd = fd;
		ASSERT_EQ(pthread_create(&s->cthr[s->ncthr++], NULL, conn_main, cn), 0);
	}
	for (int i = 0; i < s->ncthr; i++)
		pthread_join(s->cthr[i], NULL);
	return NULL;
}

struct server *server_start(handler_fn h, gate_fn gate, void *user)
{
	struct server *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	ASSERT(s != NULL);
	pthread_mutex_init(&s->lock, NULL);
	s->handler = h;
	s->gate = gate;
	s->user = user;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT(s->lfd >= 0);
	ASSERT_EQ(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(listen(s->lfd, 64), 0);
	ASSERT_EQ(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	ASSERT_EQ(pthread_create(&s->thr, NULL, accept_main, s), 0);
	return s;
}

void server_stop(struct server *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thr, NULL);
	close(s->lfd);
	for (int i = 0; i < s->nlog; i++)
		free(s->log[i].body);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int server_nlog(struct server *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->nlog;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int server_count(struct server *s, const char *path)
{
	int n = 0;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->nlog; i++)
		if (!path || strcmp(s->log[i].path, path) == 0)
			n++;
	pthread_mutex_unlock(&s->lock);
	return n;
}
