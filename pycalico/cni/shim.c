/*
 * pycalico CNI shim, compiled: the same job as shim.py without an interpreter to start.
 *
 * A runtime runs the CNI plugin once per pod and waits for it; a Python interpreter alone
 * takes longer to start than the Go reference plugins take to finish. This forwards the
 * call to the node's CNI agent (wire format in pycalico/cni/agent.py) and, when no agent
 * listens or the agent hands the call back, runs the Python plugin in-process instead.
 *
 * The agent may run in another mount namespace, where CNI_NETNS names nothing or another
 * file: the shim opens it here, where the runtime is, and passes the descriptor along. It
 * has no other logic of its own.
 *
 * Built by pycalico.cni.install with -DPLUGIN, -DPYTHON and -DSOCKET_PATH string macros.
 * A relative SOCKET_PATH is taken from the directory this shim is in: a lab builds the shim
 * once and copies it into each node's bin directory, beside that node's run directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* The first word of a request: the wire format and its version (agent.PROTOCOL). */
#define PROTOCOL "pycalico-cni/2"

extern char **environ;

struct buf { char *data; size_t len, cap; };

static void put(struct buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 4096;
        b->data = realloc(b->data, b->cap);
        if (!b->data) { perror("calico shim"); exit(1); }
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

/* Read until end of file; -1 on an error (a reset connection, a timeout). */
static int read_all(int fd, struct buf *b) {
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        put(b, chunk, (size_t)n);
    }
    return 0;
}

/* send() rather than write(): MSG_NOSIGNAL, so an agent that hung up is an error, not SIGPIPE. */
static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

/* No agent: hand stdin to the Python plugin through a pipe (or a file if it is large). */
static void run_here(struct buf *in, char **argv) {
    FILE *spill = tmpfile();
    if (!spill || fwrite(in->data, 1, in->len, spill) != in->len || fflush(spill) != 0) {
        perror("calico shim: temporary file");
        exit(1);
    }
    rewind(spill);
    dup2(fileno(spill), 0);
    char *args[64] = {PYTHON, "-m", "pycalico.cni.main", PLUGIN};
    int i = 4;
    for (int a = 1; argv[a] && i < 63; a++) args[i++] = argv[a];
    args[i] = NULL;
    execv(PYTHON, args);
    perror("calico shim: exec " PYTHON);
    exit(1);
}

/* CNI_NETNS, opened as pycalico.netns.open_netns opens it: only a regular file (nsfs files
 * are; opening a device can act), read-only and non-blocking. Returns the request's <netns>
 * word; *fd is the descriptor when the word is "fd", else -1. Whatever failed is the
 * agent's to report, as the plugin would: the word carries the errno. */
static const char *open_netns(int *fd, char *word, size_t size) {
    const char *path = getenv("CNI_NETNS");
    struct stat st;
    *fd = -1;
    if (!path || !*path) return "-";
    if (stat(path, &st) != 0) {
        snprintf(word, size, "%d", errno > 0 ? errno : EIO);
        return word;
    }
    if (!S_ISREG(st.st_mode)) return "other";
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (*fd < 0) {
        snprintf(word, size, "%d", errno > 0 ? errno : EIO);
        return word;
    }
    return "fd";
}

/* The header, with the namespace's descriptor (if any) as SCM_RIGHTS on its first bytes. */
static int send_header(int sock, const char *p, size_t n, int ns) {
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    union { struct cmsghdr align; char space[CMSG_SPACE(sizeof(int))]; } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (ns >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.space;
        msg.msg_controllen = sizeof control.space;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &ns, sizeof ns);
    }
    ssize_t w;
    do w = sendmsg(sock, &msg, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
    if (w < 0) return -1;
    return send_all(sock, p + w, n - (size_t)w);
}

/* The agent's address into `addr`; -1 when a relative SOCKET_PATH leads to no socket. */
static int agent_address(struct sockaddr_un *addr) {
    char place[PATH_MAX], found[PATH_MAX];
    const char *path = SOCKET_PATH;
    if (path[0] != '/') {
        /* This shim's directory joined with SOCKET_PATH, made absolute (`bin/../run` would
         * waste sun_path's 108 bytes): realpath needs the socket to exist, as connect does. */
        ssize_t n = readlink("/proc/self/exe", place, sizeof place - 1);
        if (n < 0) return -1;
        place[n] = 0;
        char *name = strrchr(place, '/') + 1; /* the kernel's answer is an absolute path */
        size_t room = sizeof place - (size_t)(name - place);
        if (snprintf(name, room, "%s", SOCKET_PATH) >= (int)room || !realpath(place, found))
            return -1;
        path = found;
    }
    if (strlen(path) >= sizeof addr->sun_path) return -1;
    strncpy(addr->sun_path, path, sizeof addr->sun_path - 1);
    return 0;
}

static const char NO_ANSWER[] =
    "{\"cniVersion\": \"1.1.0\", \"code\": 999, "
    "\"msg\": \"the CNI agent closed the connection without an answer\"}";

int main(int argc, char **argv) {
    struct buf in = {0}, env = {0}, reply = {0};
    if (argc > 1) run_here(&in, argv);  /* -v and friends: nothing to forward */
    if (read_all(0, &in) != 0) { perror("calico shim: stdin"); return 1; }
    for (char **e = environ; *e; e++) {
        if (env.len) put(&env, "", 1);
        put(&env, *e, strlen(*e));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (fd < 0 || agent_address(&addr) != 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        run_here(&in, argv);
    /* Longer than the plugin's own 90 s IPAM deadline: a hung agent must not hang the runtime. */
    struct timeval timeout = {.tv_sec = 120};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    int ns;
    char errno_word[16];
    const char *netns = open_netns(&ns, errno_word, sizeof errno_word);
    char header[160];
    int hl = snprintf(header, sizeof header, PROTOCOL " %s %zu %zu %s\n", PLUGIN, env.len,
                      in.len, netns);
    /* A send that fails may still have an answer waiting: an agent that refused the request
     * early (too large, another wire format) answers, then stops reading. */
    if (send_header(fd, header, (size_t)hl, ns) == 0 &&
        send_all(fd, env.data ? env.data : "", env.len) == 0)
        send_all(fd, in.data ? in.data : "", in.len);
    if (ns >= 0) close(ns);
    if (read_all(fd, &reply) != 0 && reply.len == 0) {
        fputs(NO_ANSWER, stdout);
        return 1;
    }
    close(fd);
    put(&reply, "", 1); /* NUL-terminate for sscanf; not part of the reply */
    reply.len--;
    if (strcmp(reply.data, "in-process 0\n") == 0) run_here(&in, argv); /* the agent's answer */
    char *nl = memchr(reply.data, '\n', reply.len);
    int code;
    size_t size;
    if (!nl || sscanf(reply.data, "%d %zu", &code, &size) != 2 ||
        size != reply.len - (size_t)(nl + 1 - reply.data)) {
        fputs(NO_ANSWER, stdout);
        return 1;
    }
    if (write_all(1, nl + 1, size)) return 1;
    return code;
}
