/*
 * grpc-put-load: a gRPC unary load generator over plaintext HTTP/2 (h2c, prior
 * knowledge) on libnghttp2, like h2load but with a different body per request.
 *
 * h2load replays one request body. A Put that repeats the same values creates
 * no new version in cfgd, so a replayed Put measures a no-op. This program
 * takes a gRPC-framed message as a template and rewrites, per request and in
 * place (the length never changes, so the frame prefix stays valid):
 *   "@@@@@@@@@@@@" (12 chars) -> the request's sequence number, 12 digits;
 *   "%%%%"         (4 chars)  -> sequence number mod K (-k), 4 digits.
 *
 * It is single-threaded: non-blocking sockets and epoll, one nghttp2 client
 * session per connection, each kept at -m streams in flight until -n requests
 * have started. Frames are serialized with nghttp2_session_mem_send into one
 * buffer per connection and written with one send() per batch, and everything
 * read is fed to nghttp2_session_mem_recv, so the syscall count per request
 * stays low (the cost of the generator must stay well below the server's).
 *
 * A request succeeds when the response has :status 200 and grpc-status 0 (in
 * the trailers, or in a trailers-only response) and the stream closes without
 * RST_STREAM. At the end it prints one line on stdout:
 *   done=N succeeded=S failed=F seconds=T ops_per_s=R p50_us=X p99_us=Y
 * with percentiles over every completed request, and, when requests failed,
 * the first distinct reasons (grpc-status and grpc-message) on stderr.
 *
 * Build: cc -O2 -Wall -Wextra -o grpc-put-load grpc-put-load.c -lnghttp2
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#define SEQ_MARK "@@@@@@@@@@@@"
#define SEQ_DIGITS 12
#define KEY_MARK "%%%%"
#define KEY_DIGITS 4
#define MAX_EXTRA_HEADERS 32
#define MAX_REASONS 8
/* Serialized frames are collected up to this size before one send(). */
#define WRITE_BATCH (64 * 1024)
/* Flow-control windows advertised to the server, as h2load's defaults (2^30 - 1). */
#define WINDOW_SIZE ((1 << 30) - 1)

/* One in-flight request: a slot of its connection, reused after the stream closes. */
typedef struct {
  int in_use;
  int32_t stream_id;
  uint64_t seq;
  uint64_t start_ns;
  uint8_t *body; /* this slot's own copy of the template, rewritten per request */
  size_t sent;   /* bytes of body handed to nghttp2 so far */
  int http_status;
  int grpc_status; /* -1 until a grpc-status header arrives */
  char grpc_message[128];
} request_t;

typedef struct {
  int fd;
  int index;
  nghttp2_session *session;
  request_t *slots;
  int *free_slots; /* stack of free slot indexes */
  int free_count;
  int in_flight;
  int want_out; /* EPOLLOUT is registered */
  int goaway;   /* the server sent GOAWAY: start no more streams here */
  int closed;
  uint8_t *wbuf; /* serialized frames not yet written */
  size_t wlen, woff, wcap;
} conn_t;

/* A distinct failure reason and how often it occurred. */
typedef struct {
  char text[200];
  uint64_t count;
} reason_t;

/* Options and shared state (the program is single-threaded). */
static const char *opt_host = "127.0.0.1";
static const char *opt_port = NULL;
static const char *opt_path = NULL;
static const char *opt_body = NULL;
static const char *opt_log = NULL;
static int opt_conns = 1;
static int opt_streams = 1;
static uint64_t opt_requests = 1;
static uint64_t opt_keys = 1;

static uint8_t *template_body;
static size_t template_len;
static size_t *seq_offsets, *key_offsets;
static size_t seq_count, key_count;

static nghttp2_nv *request_headers;
static size_t request_header_count;

static uint64_t started, succeeded, failed;
static uint32_t *latencies_us; /* one per completed request, in completion order */
static uint64_t latency_count;
static reason_t reasons[MAX_REASONS];
static int reason_count;
static uint64_t reasons_dropped;

static int epoll_fd;
static int live_conns;
static uint8_t read_buffer[64 * 1024];

static void die(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fputs("grpc-put-load: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  exit(2);
}

static void *xmalloc(size_t size) {
  void *p = malloc(size == 0 ? 1 : size);
  if (p == NULL) die("out of memory");
  return p;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t parse_count(const char *text, const char *what, uint64_t min) {
  char *end;
  errno = 0;
  unsigned long long value = strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min) die("bad %s: %s", what, text);
  return value;
}

/* ---- The body template ---- */

static void read_template(const char *file) {
  FILE *f = fopen(file, "rb");
  if (f == NULL) die("cannot open %s: %s", file, strerror(errno));
  size_t cap = 4096, len = 0;
  uint8_t *data = xmalloc(cap);
  for (;;) {
    if (len == cap) {
      cap *= 2;
      data = realloc(data, cap);
      if (data == NULL) die("out of memory");
    }
    size_t n = fread(data + len, 1, cap - len, f);
    if (n == 0) break;
    len += n;
  }
  if (ferror(f)) die("cannot read %s", file);
  fclose(f);
  template_body = data;
  template_len = len;
  /* A gRPC message: compression flag 0, 4-byte big-endian length, then that many bytes. */
  if (len < 5) die("%s is not a gRPC-framed message (shorter than its 5-byte prefix)", file);
  uint32_t framed = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 | data[4];
  if (data[0] != 0 || framed != len - 5)
    die("%s is not one uncompressed gRPC-framed message (prefix says %u bytes, %zu follow)", file, framed, len - 5);
}

/* Offsets of every non-overlapping occurrence of mark in the template. */
static size_t find_marks(const char *mark, size_t **offsets) {
  size_t mark_len = strlen(mark), count = 0;
  *offsets = xmalloc(sizeof(size_t) * (template_len / mark_len + 1));
  for (size_t i = 0; i + mark_len <= template_len;) {
    if (memcmp(template_body + i, mark, mark_len) == 0) {
      (*offsets)[count++] = i;
      i += mark_len;
    } else {
      i++;
    }
  }
  return count;
}

/* Writes value as exactly `digits` decimal digits, zero-padded, at out. */
static void put_digits(uint8_t *out, uint64_t value, int digits) {
  for (int i = digits - 1; i >= 0; i--) {
    out[i] = (uint8_t)('0' + value % 10);
    value /= 10;
  }
}

/* Rewrites the placeholders of a slot's body for request number seq. */
static void stamp_body(uint8_t *body, uint64_t seq) {
  for (size_t i = 0; i < seq_count; i++) put_digits(body + seq_offsets[i], seq, SEQ_DIGITS);
  for (size_t i = 0; i < key_count; i++) put_digits(body + key_offsets[i], seq % opt_keys, KEY_DIGITS);
}

/* ---- Request headers ---- */

static void add_header(const char *name, const char *value) {
  nghttp2_nv *nv = &request_headers[request_header_count++];
  nv->name = (uint8_t *)name;
  nv->namelen = strlen(name);
  nv->value = (uint8_t *)value;
  nv->valuelen = strlen(value);
  /* The strings live until exit: nghttp2 need not copy them. */
  nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
}

/* Builds the header list every request sends: the fixed gRPC ones, then each -H. */
static void build_headers(char **extra, int extra_count) {
  request_headers = xmalloc(sizeof(nghttp2_nv) * (6 + (size_t)extra_count));
  char *authority = xmalloc(strlen(opt_host) + strlen(opt_port) + 2);
  sprintf(authority, "%s:%s", opt_host, opt_port);
  add_header(":method", "POST");
  add_header(":scheme", "http");
  add_header(":authority", authority);
  add_header(":path", opt_path);
  add_header("content-type", "application/grpc");
  add_header("te", "trailers");
  for (int i = 0; i < extra_count; i++) {
    /* "name: value"; HTTP/2 wants the name in lower case. */
    char *colon = strchr(extra[i] + (extra[i][0] == ':'), ':');
    if (colon == NULL || colon == extra[i]) die("bad header (want \"name: value\"): %s", extra[i]);
    char *name = strndup(extra[i], (size_t)(colon - extra[i]));
    for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
    const char *value = colon + 1;
    while (*value == ' ' || *value == '\t') value++;
    add_header(name, value);
  }
}

/* ---- Results ---- */

static void note_reason(const char *text) {
  for (int i = 0; i < reason_count; i++) {
    if (strcmp(reasons[i].text, text) == 0) {
      reasons[i].count++;
      return;
    }
  }
  if (reason_count == MAX_REASONS) {
    reasons_dropped++;
    return;
  }
  snprintf(reasons[reason_count].text, sizeof reasons[reason_count].text, "%s", text);
  reasons[reason_count++].count = 1;
}

/* Records a finished request; reason is NULL for a success. */
static void finish(request_t *r, const char *reason) {
  uint64_t us = (now_ns() - r->start_ns) / 1000;
  latencies_us[latency_count++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
  if (reason == NULL) {
    succeeded++;
  } else {
    failed++;
    note_reason(reason);
  }
}

static void release_slot(conn_t *c, request_t *r) {
  r->in_use = 0;
  c->free_slots[c->free_count++] = (int)(r - c->slots);
  c->in_flight--;
}

/* ---- nghttp2 callbacks ---- */

/* Supplies a request's body; the whole message goes out with END_STREAM. */
static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
  (void)session, (void)stream_id, (void)user_data;
  request_t *r = source->ptr;
  size_t n = template_len - r->sent;
  if (n > length) n = length;
  memcpy(buf, r->body + r->sent, n);
  r->sent += n;
  if (r->sent == template_len) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* Picks :status, grpc-status and grpc-message out of the response headers and trailers. */
static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
  (void)flags, (void)user_data;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  request_t *r = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
  if (r == NULL) return 0;
  /* nghttp2 NUL-terminates name and value. */
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
    r->http_status = atoi((const char *)value);
  } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
    r->grpc_status = atoi((const char *)value);
  } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
    size_t n = valuelen < sizeof r->grpc_message - 1 ? valuelen : sizeof r->grpc_message - 1;
    memcpy(r->grpc_message, value, n);
    r->grpc_message[n] = '\0';
  }
  return 0;
}

/*
 * A GOAWAY from the server: start no more streams on this connection (nghttp2 would refuse each
 * one, and top_up would burn through the remaining requests as failures); the ones in flight
 * finish, then the session ends and the other connections take the rest.
 */
static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
  (void)session;
  conn_t *c = user_data;
  if (frame->hd.type != NGHTTP2_GOAWAY) return 0;
  if (!c->goaway)
    fprintf(stderr, "grpc-put-load: connection %d: GOAWAY (%s)\n", c->index,
            nghttp2_http2_strerror(frame->goaway.error_code));
  c->goaway = 1;
  return 0;
}

/* A stream is over: classify it, record its latency and free its slot. */
static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data) {
  conn_t *c = user_data;
  request_t *r = nghttp2_session_get_stream_user_data(session, stream_id);
  if (r == NULL || !r->in_use || r->stream_id != stream_id) return 0;
  char reason[200];
  if (error_code != NGHTTP2_NO_ERROR) {
    snprintf(reason, sizeof reason, "stream reset: %s", nghttp2_http2_strerror(error_code));
    finish(r, reason);
  } else if (r->http_status != 200) {
    snprintf(reason, sizeof reason, "HTTP status %d", r->http_status);
    finish(r, reason);
  } else if (r->grpc_status < 0) {
    finish(r, "no grpc-status (missing trailers)");
  } else if (r->grpc_status != 0) {
    snprintf(reason, sizeof reason, "grpc-status %d, grpc-message \"%s\"", r->grpc_status, r->grpc_message);
    finish(r, reason);
  } else {
    finish(r, NULL);
  }
  release_slot(c, r);
  return 0;
}

/* ---- Connections ---- */

static int connect_to(const char *host, const char *port) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list;
  int rv = getaddrinfo(host, port, &hints, &list);
  if (rv != 0) die("cannot resolve %s:%s: %s", host, port, gai_strerror(rv));
  int fd = -1, err = 0;
  for (struct addrinfo *a = list; a != NULL; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    /* A blocking connect: a refused or unreachable server is a setup error, reported at once. */
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(list);
  if (fd < 0) die("cannot connect to %s:%s: %s", host, port, strerror(err));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void open_conn(conn_t *c, int index, nghttp2_session_callbacks *callbacks) {
  c->index = index;
  c->fd = connect_to(opt_host, opt_port);
  c->slots = xmalloc(sizeof(request_t) * (size_t)opt_streams);
  c->free_slots = xmalloc(sizeof(int) * (size_t)opt_streams);
  for (int i = 0; i < opt_streams; i++) {
    memset(&c->slots[i], 0, sizeof c->slots[i]);
    c->slots[i].body = xmalloc(template_len);
    memcpy(c->slots[i].body, template_body, template_len);
    c->free_slots[i] = opt_streams - 1 - i;
  }
  c->free_count = opt_streams;
  c->wcap = WRITE_BATCH * 2;
  c->wbuf = xmalloc(c->wcap);
  if (nghttp2_session_client_new(&c->session, callbacks, c) != 0) die("nghttp2_session_client_new failed");
  /* The client preface is sent with this first SETTINGS frame (h2c with prior knowledge). */
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_SIZE},
  };
  if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 2) != 0) die("nghttp2_submit_settings failed");
  if (nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, WINDOW_SIZE) != 0)
    die("nghttp2_session_set_local_window_size failed");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
  live_conns++;
}

/* Ends a connection; requests still in flight on it count as failed. */
static void close_conn(conn_t *c, const char *why) {
  if (c->closed) return;
  c->closed = 1;
  live_conns--;
  if (c->in_flight > 0) fprintf(stderr, "grpc-put-load: connection %d closed: %s\n", c->index, why);
  char reason[200];
  snprintf(reason, sizeof reason, "connection closed: %s", why);
  for (int i = 0; i < opt_streams; i++) {
    request_t *r = &c->slots[i];
    if (!r->in_use) continue;
    finish(r, reason);
    release_slot(c, r);
  }
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  nghttp2_session_del(c->session);
  c->session = NULL;
}

/* Starts requests until the connection has -m in flight or all -n have started. */
static void top_up(conn_t *c) {
  while (!c->closed && !c->goaway && c->free_count > 0 && started < opt_requests) {
    request_t *r = &c->slots[c->free_slots[c->free_count - 1]];
    r->seq = started;
    r->sent = 0;
    r->http_status = 0;
    r->grpc_status = -1;
    r->grpc_message[0] = '\0';
    stamp_body(r->body, r->seq);
    nghttp2_data_provider provider = {.source.ptr = r, .read_callback = read_body};
    r->start_ns = now_ns();
    int32_t id = nghttp2_submit_request(c->session, NULL, request_headers, request_header_count, &provider, r);
    if (id < 0) {
      /* Stream ids ran out (after 2^30 requests): this connection takes no more. */
      if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) c->goaway = 1;
      else close_conn(c, nghttp2_strerror(id));
      return;
    }
    r->stream_id = id;
    r->in_use = 1;
    c->free_count--;
    c->in_flight++;
    started++;
  }
}

/* Serializes pending frames and writes them until done or the socket is full. */
static void flush(conn_t *c) {
  while (!c->closed) {
    if (c->woff == c->wlen) {
      c->woff = c->wlen = 0;
      while (c->wlen < WRITE_BATCH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
          close_conn(c, nghttp2_strerror((int)n));
          return;
        }
        if (n == 0) break;
        if (c->wlen + (size_t)n > c->wcap) {
          c->wcap = c->wlen + (size_t)n;
          c->wbuf = realloc(c->wbuf, c->wcap);
          if (c->wbuf == NULL) die("out of memory");
        }
        memcpy(c->wbuf + c->wlen, data, (size_t)n);
        c->wlen += (size_t)n;
      }
      if (c->wlen == 0) break;
    }
    ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_conn(c, strerror(errno));
      return;
    }
    c->woff += (size_t)n;
  }
  if (c->closed) return;
  /* Ask for EPOLLOUT only while bytes wait for room in the socket. */
  int want_out = c->woff < c->wlen;
  if (want_out != c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
  }
  if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) && c->woff == c->wlen)
    close_conn(c, "session ended");
}

/* Reads what the socket has and feeds it to nghttp2 (which calls the callbacks above). */
static void receive(conn_t *c) {
  for (;;) {
    ssize_t n = recv(c->fd, read_buffer, sizeof read_buffer, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      close_conn(c, strerror(errno));
      return;
    }
    if (n == 0) {
      close_conn(c, "the server closed the connection");
      return;
    }
    ssize_t rv = nghttp2_session_mem_recv(c->session, read_buffer, (size_t)n);
    if (rv < 0) {
      close_conn(c, nghttp2_strerror((int)rv));
      return;
    }
    /* A short read means the socket is drained: skip the recv() that would say EAGAIN. */
    if ((size_t)n < sizeof read_buffer) return;
  }
}

static int compare_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* The p-th percentile as bench/workloads.ts computes it: sorted[floor(p/100 * n)]. */
static uint32_t percentile(const uint32_t *sorted, uint64_t n, double p) {
  if (n == 0) return 0;
  uint64_t i = (uint64_t)(p / 100.0 * (double)n);
  return sorted[i < n ? i : n - 1];
}

static void usage(void) {
  fprintf(stderr,
          "usage: grpc-put-load -p port -P path -b body-file [-h host] [-c connections]\n"
          "                     [-m streams-per-connection] [-n requests] [-k keys]\n"
          "                     [-H 'name: value']... [-l latency-log-file]\n"
          "The body file is one gRPC-framed message; in it, %s becomes the request's\n"
          "sequence number (12 digits) and %s the sequence number mod keys (4 digits).\n",
          SEQ_MARK, KEY_MARK);
  exit(2);
}

int main(int argc, char **argv) {
  char *extra[MAX_EXTRA_HEADERS];
  int extra_count = 0, opt;
  while ((opt = getopt(argc, argv, "h:p:P:c:m:n:H:b:k:l:")) != -1) {
    switch (opt) {
    case 'h': opt_host = optarg; break;
    case 'p': opt_port = optarg; break;
    case 'P': opt_path = optarg; break;
    case 'c': opt_conns = (int)parse_count(optarg, "-c", 1); break;
    case 'm': opt_streams = (int)parse_count(optarg, "-m", 1); break;
    case 'n': opt_requests = parse_count(optarg, "-n", 1); break;
    case 'k': opt_keys = parse_count(optarg, "-k", 1); break;
    case 'b': opt_body = optarg; break;
    case 'l': opt_log = optarg; break;
    case 'H':
      if (extra_count == MAX_EXTRA_HEADERS) die("at most %d -H headers", MAX_EXTRA_HEADERS);
      extra[extra_count++] = optarg;
      break;
    default: usage();
    }
  }
  if (optind != argc || opt_port == NULL || opt_path == NULL || opt_body == NULL) usage();
  if (opt_conns > 10000 || opt_streams > 100000) die("-c or -m too large");
  if (opt_requests > 999999999999ull) die("-n must fit in %d digits", SEQ_DIGITS);
  if (opt_keys > 10000) die("-k must be at most 10000 (%d digits)", KEY_DIGITS);
  signal(SIGPIPE, SIG_IGN);

  read_template(opt_body);
  seq_count = find_marks(SEQ_MARK, &seq_offsets);
  key_count = find_marks(KEY_MARK, &key_offsets);
  if (seq_count == 0) fprintf(stderr, "grpc-put-load: note: the body has no %s: every request sends the same body\n", SEQ_MARK);
  if (key_count == 0 && opt_keys > 1) fprintf(stderr, "grpc-put-load: note: -k %llu but the body has no %s\n", (unsigned long long)opt_keys, KEY_MARK);
  build_headers(extra, extra_count);
  latencies_us = xmalloc(sizeof(uint32_t) * opt_requests);

  nghttp2_session_callbacks *callbacks;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) die("out of memory");
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);

  epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) die("epoll_create1: %s", strerror(errno));
  conn_t *conns = xmalloc(sizeof(conn_t) * (size_t)opt_conns);
  memset(conns, 0, sizeof(conn_t) * (size_t)opt_conns);
  for (int i = 0; i < opt_conns; i++) open_conn(&conns[i], i, callbacks);
  nghttp2_session_callbacks_del(callbacks);

  /* The clock starts once every connection is open, and stops at the last completion. */
  uint64_t start = now_ns();
  for (int i = 0; i < opt_conns; i++) {
    top_up(&conns[i]);
    flush(&conns[i]);
  }
  struct epoll_event events[64];
  while (succeeded + failed < opt_requests && live_conns > 0) {
    int n = epoll_wait(epoll_fd, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      conn_t *c = events[i].data.ptr;
      if (c->closed) continue;
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(c);
      /* Every live connection refills itself, so the share of a closed one goes to the rest. */
      top_up(c);
      flush(c);
    }
  }
  double seconds = (double)(now_ns() - start) / 1e9;
  for (int i = 0; i < opt_conns; i++) close_conn(&conns[i], "finished");

  if (opt_log != NULL) {
    FILE *log = fopen(opt_log, "w");
    if (log == NULL) die("cannot write %s: %s", opt_log, strerror(errno));
    for (uint64_t i = 0; i < latency_count; i++) fprintf(log, "%u\n", latencies_us[i]);
    fclose(log);
  }
  qsort(latencies_us, latency_count, sizeof(uint32_t), compare_u32);
  if (succeeded + failed < opt_requests)
    fprintf(stderr, "grpc-put-load: every connection closed; %llu requests were not completed\n",
            (unsigned long long)(opt_requests - succeeded - failed));
  printf("done=%llu succeeded=%llu failed=%llu seconds=%.3f ops_per_s=%.1f p50_us=%u p99_us=%u\n",
         (unsigned long long)(succeeded + failed), (unsigned long long)succeeded, (unsigned long long)failed, seconds,
         seconds > 0 ? (double)succeeded / seconds : 0.0, percentile(latencies_us, latency_count, 50),
         percentile(latencies_us, latency_count, 99));
  for (int i = 0; i < reason_count; i++)
    fprintf(stderr, "grpc-put-load: %llu failed: %s\n", (unsigned long long)reasons[i].count, reasons[i].text);
  if (reasons_dropped > 0)
    fprintf(stderr, "grpc-put-load: %llu failed for other reasons\n", (unsigned long long)reasons_dropped);
  return 0;
}
