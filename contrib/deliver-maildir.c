/*
 * deliver-maildir: a delivery program for smtpd.  Writes the message on
 * standard input into a Maildir: tmp/<unique>, fsync, move into new/
 * (never over a file already there), fsync new/.  Exit 0 only once the message is on disk; any I/O error is
 * EX_TEMPFAIL, so that smtpd answers 451 and the client tries again.  A
 * maildir with a `..' component, or a name too long for the system, is
 * EX_NOUSER: smtpd answers 550, as no retry can succeed.
 */

#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static void	 usage(void) __attribute__((__noreturn__));
static int	 maildir_dotdot(const char *);
static int	 maildir_create(const char *);
static int	 maildir_name(char *, size_t);
static int	 maildir_copy(int, const char *);
static int	 maildir_sync(const char *, int);
static int	 maildir_fail(void);
static int	 maildir_move(const char *, const char *);

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE	(1 << 0)	/* Linux's renameat2(2) */
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: deliver-maildir [-c] maildir\n");
	exit(EX_USAGE);
}

/*
 * The maildir may be built from a client's address (/var/mail/%{recipient}
 * in the deliver string): a `..' component would lead out of the mail
 * store.  Whole components only: `a..b' and `...' are names.
 */
static int
maildir_dotdot(const char *path)
{
	const char	*p = path;

	for (;;) {
		if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0'))
			return 1;
		if ((p = strchr(p, '/')) == NULL)
			return 0;
		p++;
	}
}

/*
 * -c: the Maildir and its three subdirectories, those that are missing.
 * What is made is synced in its parent: the message's own sync would not
 * keep a new Maildir through a crash.  A Maildir found without all of its
 * subdirectories is new too (made by a run that failed or was killed before
 * its syncs, which nothing did since): its entry is synced in its parent
 * as well.
 */
static int
maildir_create(const char *dir)
{
	static const char	*sub[] = { "", "/tmp", "/new", "/cur" };
	char			 path[PATH_MAX];
	size_t			 i;
	int			 made[2] = { 0, 0 };

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		if (snprintf(path, sizeof(path), "%s%s", dir, sub[i]) >=
		    (int)sizeof(path)) {
			errno = ENAMETOOLONG;
			warn("%s", dir);
			return -1;
		}
		if (mkdir(path, 0700) == 0)
			made[i > 0] = 1;
		else if (errno != EEXIST) {
			warn("mkdir %s", path);
			return -1;
		}
	}
	if (made[1] && maildir_sync(dir, 1) == -1)
		return -1;
	if (made[0] || made[1]) {
		(void)snprintf(path, sizeof(path), "%s", dir);
		if (maildir_sync(dirname(path), 0) == -1)
			return -1;
	}
	return 0;
}

/*
 * The unique name of the Maildir specification: time.MusecPpid.host, with
 * `/' and `:' of the host name written as \057 and \072.
 */
static int
maildir_name(char *name, size_t len)
{
	struct timeval	 tv;
	char		 host[HOST_NAME_MAX + 1], esc[4 * sizeof(host)];
	size_t		 i, o = 0;

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0'; i++) {
		if (host[i] == '/' || host[i] == ':')
			o += (size_t)snprintf(esc + o, sizeof(esc) - o, "\\%03o",
			    (unsigned char)host[i]);
		else
			esc[o++] = host[i];
	}
	esc[o] = '\0';
	gettimeofday(&tv, NULL);
	return snprintf(name, len, "%lld.M%06ldP%ld.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), esc);
}

/* The exit for a failed step (errno): a name too long stays so. */
static int
maildir_fail(void)
{
	return errno == ENAMETOOLONG ? EX_NOUSER : EX_TEMPFAIL;
}

/* Standard input to fd, then to the disk. */
static int
maildir_copy(int fd, const char *path)
{
	char	 buf[65536], *p;
	ssize_t	 n, w;

	for (;;) {
		if ((n = read(STDIN_FILENO, buf, sizeof(buf))) == -1) {
			if (errno == EINTR)
				continue;
			warn("read");
			return -1;
		}
		if (n == 0)
			break;
		for (p = buf; n > 0; p += w, n -= w) {
			while ((w = write(fd, p, (size_t)n)) == -1 &&
			    errno == EINTR)
				;
			if (w == -1) {
				warn("write %s", path);
				return -1;
			}
		}
	}
	if (fsync(fd) == -1) {
		warn("fsync %s", path);
		return -1;
	}
	return 0;
}

/*
 * tmp/NAME into new/NAME, never over a message that has that name: a name
 * is unique only while the clock does not step back and no other host of
 * the same name (a container sharing the store) has the same pid.
 * renameat2(RENAME_NOREPLACE) where the kernel and the file system have it;
 * else link() and unlink() (NFS has no RENAME_NOREPLACE).  EEXIST fails:
 * EX_TEMPFAIL, and the retry has another name.
 */
static int
maildir_move(const char *tmp, const char *new)
{
#ifdef SYS_renameat2
	if (syscall(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, new,
	    RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
		warn("rename %s", new);
		return -1;
	}
#endif
	if (link(tmp, new) == -1) {
		warn("link %s", new);
		return -1;
	}
	/* Delivered; a tmp/ name left behind is swept by readers (36 h). */
	if (unlink(tmp) == -1)
		warn("unlink %s", tmp);
	return 0;
}

/*
 * The rename is durable only once the directory is on disk too.  Unless
 * must, a directory we may write in but not read (a mode 0333 spool) is
 * passed over: nothing better can be done there.
 */
static int
maildir_sync(const char *dir, int must)
{
	int	 fd, rv;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		if (!must && errno == EACCES)
			return 0;
		warn("open %s", dir);
		return -1;
	}
	if ((rv = fsync(fd)) == -1)
		warn("fsync %s", dir);
	close(fd);
	return rv;
}

int
main(int argc, char *argv[])
{
	char	 name[NAME_MAX + 1], tmp[PATH_MAX], new[PATH_MAX];
	char	 newdir[PATH_MAX];
	int	 ch, create = 0, fd;

	while ((ch = getopt(argc, argv, "c")) != -1) {
		switch (ch) {
		case 'c':
			create = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1 || argv[0][0] == '\0')
		usage();
	if (maildir_dotdot(argv[0])) {
		warnx("%s: `..' in the maildir", argv[0]);
		return EX_NOUSER;
	}
	/* The names first: -c makes nothing for a message it cannot name. */
	if (maildir_name(name, sizeof(name)) >= (int)sizeof(name) ||
	    snprintf(tmp, sizeof(tmp), "%s/tmp/%s", argv[0], name) >=
	    (int)sizeof(tmp) || snprintf(new, sizeof(new), "%s/new/%s",
	    argv[0], name) >= (int)sizeof(new)) {
		errno = ENAMETOOLONG;
		warn("%s", argv[0]);
		return EX_NOUSER;
	}
	if (create && maildir_create(argv[0]) == -1)
		return maildir_fail();
	snprintf(newdir, sizeof(newdir), "%s/new", argv[0]);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1) {
		warn("open %s", tmp);
		return maildir_fail();
	}
	if (maildir_copy(fd, tmp) == -1) {
		close(fd);
		goto fail;
	}
	/* NFS reports some write errors only at close. */
	if (close(fd) == -1) {
		warn("close %s", tmp);
		goto fail;
	}
	if (maildir_move(tmp, new) == -1)
		goto fail;
	if (maildir_sync(newdir, 1) == -1) {
		/* Not known to be safe: 451, and no copy the retry repeats. */
		unlink(new);
		return EX_TEMPFAIL;
	}
	return EX_OK;
 fail:
	unlink(tmp);
	return EX_TEMPFAIL;
}
