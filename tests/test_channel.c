/*
 * test_channel.c: unit tests of channel.c (the master-child messages)
 * and anvil.c (AUTH failures per address): encoding and length checks,
 * a descriptor passed only with a hand-off, a late answer dropped while
 * the right one is taken, and the throttle's window, /64 and eviction.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpd.h"
#include "internal.h"

static void
test_encode_decode(void **state)
{
	unsigned char	 buf[sizeof(struct chan_hdr) + CHAN_PAYLOAD_MAX];
	struct chan_msg	 m;
	const char	*why;
	ssize_t		 n;

	(void)state;
	n = chan_encode(buf, sizeof(buf), CHAN_PEER, 7, "192.0.2.1", 9);
	assert_int_equal(n, sizeof(struct chan_hdr) + 9);
	assert_int_equal(chan_decode(buf, (size_t)n, &m, &why), 0);
	assert_int_equal(m.cm_hdr.ch_type, CHAN_PEER);
	assert_int_equal(m.cm_hdr.ch_id, 7);
	assert_string_equal((char *)m.cm_data, "192.0.2.1");
	/* every octet less, or one more, is a bad message */
	assert_int_equal(chan_decode(buf, (size_t)n - 1, &m, &why), -1);
	assert_string_equal(why, "bad length");
	assert_int_equal(chan_decode(buf, 3, &m, &why), -1);
	assert_string_equal(why, "short header");
	buf[n] = 'x';
	assert_int_equal(chan_decode(buf, (size_t)n + 1, &m, &why), -1);
	/* an exact-size type with another size */
	n = chan_encode(buf, sizeof(buf), CHAN_PEER_ANSWER, 1, "yy", 2);
	assert_int_equal(chan_decode(buf, (size_t)n, &m, &why), -1);
	n = chan_encode(buf, sizeof(buf), CHAN_IDLE, 2, NULL, 0);
	assert_int_equal(chan_decode(buf, (size_t)n, &m, &why), 0);
	/* a string holds no NUL, and is not empty */
	n = chan_encode(buf, sizeof(buf), CHAN_AUTH_ASK, 3, "a\0b", 3);
	assert_int_equal(chan_decode(buf, (size_t)n, &m, &why), -1);
	n = chan_encode(buf, sizeof(buf), CHAN_AUTH_ASK, 3, "", 0);
	assert_int_equal(chan_decode(buf, (size_t)n, &m, &why), -1);
	/* unknown types, and what cannot be encoded */
	((struct chan_hdr *)(void *)buf)->ch_type = CHAN_NTYPES;
	assert_int_equal(chan_decode(buf, sizeof(struct chan_hdr), &m, &why),
	    -1);
	assert_string_equal(why, "unknown type");
	assert_int_equal(chan_encode(buf, sizeof(buf), 0, 1, NULL, 0), -1);
	assert_int_equal(chan_encode(buf, sizeof(buf), CHAN_PEER, 1, buf,
	    CHAN_PAYLOAD_MAX + 1), -1);
	assert_int_equal(chan_encode(buf, 4, CHAN_IDLE, 1, NULL, 0), -1);
}

static void
test_descriptors(void **state)
{
	struct handoff	 h;
	struct chan_msg	 m;
	int		 sv[2], fd;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	memset(&h, 0, sizeof(h));
	h.h_listener = 3;
	fd = open("/dev/null", O_RDONLY);
	assert_true(fd != -1);
	assert_int_equal(chan_send(sv[0], CHAN_HANDOFF, 1, &h, sizeof(h), fd),
	    0);
	assert_int_equal(chan_recv(sv[1], &m), 1);
	assert_int_equal(m.cm_hdr.ch_type, CHAN_HANDOFF);
	assert_true(m.cm_fd != -1);
	close(m.cm_fd);
	/* a hand-off without its socket, a descriptor with anything else */
	assert_int_equal(chan_send(sv[0], CHAN_HANDOFF, 2, &h, sizeof(h), -1),
	    0);
	assert_int_equal(chan_recv(sv[1], &m), -1);
	assert_int_equal(chan_send(sv[0], CHAN_IDLE, 3, NULL, 0, fd), 0);
	assert_int_equal(chan_recv(sv[1], &m), -1);
	assert_int_equal(m.cm_fd, -1);
	/* nothing more: EAGAIN; the other end gone: EOF */
	assert_int_equal(chan_recv(sv[1], &m), -1);
	close(sv[0]);
	assert_int_equal(chan_recv(sv[1], &m), 0);
	close(sv[1]);
	close(fd);
}

static void
test_late_answer(void **state)
{
	unsigned char	 ans = 1;
	struct chan_msg	 m;
	int		 sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	/* the first question gets no answer in time */
	assert_int_equal(chan_ask(sv[1], CHAN_PEER, "192.0.2.1",
	    CHAN_PEER_ANSWER, 50, &m), -1);
	assert_int_equal(chan_recv(sv[0], &m), 1);
	/* its answer comes late, then an unknown one, then the right one */
	assert_int_equal(chan_send(sv[0], CHAN_PEER_ANSWER, m.cm_hdr.ch_id,
	    &ans, 1, -1), 0);
	assert_int_equal(chan_send(sv[0], CHAN_IDLE, 99, NULL, 0, -1), 0);
	assert_int_equal(chan_send(sv[0], CHAN_PEER_ANSWER,
	    m.cm_hdr.ch_id + 1, &ans, 1, -1), 0);
	assert_int_equal(chan_ask(sv[1], CHAN_PEER, "192.0.2.2",
	    CHAN_PEER_ANSWER, 1000, &m), 0);
	assert_int_equal(m.cm_data[0], 1);
	close(sv[0]);
	close(sv[1]);
}

static void
test_anvil(void **state)
{
	char	 key[ANVIL_KEY_LEN];
	int	 i;

	(void)state;
	anvil_clear();
	assert_int_equal(anvil_key("2001:db8:1:2:3:4:5:6", key, sizeof(key)),
	    0);
	assert_string_equal(key, "2001:db8:1:2::/64");
	assert_int_equal(anvil_key("192.0.2.9", key, sizeof(key)), 0);
	assert_string_equal(key, "192.0.2.9");
	/* an IPv4-mapped address is its IPv4 client, not ::/64 */
	assert_int_equal(anvil_key("::ffff:198.51.100.7", key, sizeof(key)),
	    0);
	assert_string_equal(key, "198.51.100.7");
	assert_int_equal(anvil_key("", key, sizeof(key)), -1);
	/* a link-local client: its zone is no part of the key */
	assert_int_equal(anvil_key("fe80::2%eth0", key, sizeof(key)), 0);
	assert_string_equal(key, "fe80::/64");
	/* a zone longer than any interface name: no address */
	assert_int_equal(anvil_key("fe80::2%0123456789012345678901234567890"
	    "1234567890123456789012345678901234567890", key, sizeof(key)), -1);
	for (i = 0; i < 3; i++)
		anvil_failed("fe80::2%d0", 3, 1000);
	assert_true(anvil_throttled("fe80::2%d0", 3, 1000));
	assert_true(anvil_throttled("fe80::2", 3, 1000));
	assert_false(anvil_begin("fe80::2%d0", 3, 1000));
	anvil_clear();
	for (i = 0; i < 3; i++) {
		assert_false(anvil_throttled("192.0.2.9", 3, 1000));
		anvil_failed("192.0.2.9", 3, 1000 + i);
	}
	assert_true(anvil_throttled("192.0.2.9", 3, 2000));
	assert_false(anvil_throttled("192.0.2.10", 3, 2000));
	assert_true(anvil_throttled("::ffff:192.0.2.9", 3, 2000));
	assert_false(anvil_throttled("::ffff:192.0.2.10", 3, 2000));
	assert_false(anvil_throttled("192.0.2.9", 0, 2000));
	/* the window of the first failure ends */
	assert_false(anvil_throttled("192.0.2.9", 3, 1000 + ANVIL_WINDOW_MS));
	/* one /64 */
	for (i = 0; i < 3; i++)
		anvil_failed(i % 2 ? "2001:db8::1" : "2001:db8::ffff", 3, 5000);
	assert_true(anvil_throttled("2001:db8::1234:5678", 3, 5000));
	assert_false(anvil_throttled("2001:db8:0:1::1", 3, 5000));
	/* bounded: the least recently used address goes */
	anvil_failed("198.51.100.1", 2, 6000);
	for (i = 0; i < ANVIL_SLOTS; i++) {
		(void)snprintf(key, sizeof(key), "10.0.%d.%d", i / 256,
		    i % 256);
		anvil_failed(key, 2, 7000 + i);
	}
	assert_false(anvil_throttled("198.51.100.1", 1, 7000 + i));
	assert_true(anvil_throttled("10.0.3.255", 1, 7000 + i));
	/*
	 * A throttled address is not forgotten for failures of 1024 others
	 * that are not, nor for the logins of new ones.
	 */
	anvil_clear();
	for (i = 0; i < 3; i++)
		anvil_failed("192.0.2.9", 3, 1000);
	for (i = 0; i < 2 * ANVIL_SLOTS; i++) {
		(void)snprintf(key, sizeof(key), "10.3.%d.%d", i / 256,
		    i % 256);
		anvil_failed(key, 3, 2000 + i);
		assert_true(anvil_begin(key, 3, 2000 + i));
		anvil_end(key, 2000 + i);
	}
	assert_true(anvil_throttled("192.0.2.9", 3, 2000 + i));
	/* when every entry throttles, the least recently used goes */
	for (i = 0; i < ANVIL_SLOTS; i++) {
		(void)snprintf(key, sizeof(key), "10.4.%d.%d", i / 256,
		    i % 256);
		anvil_failed(key, 1, 9000 + i);
	}
	assert_false(anvil_throttled("192.0.2.9", 3, 9000 + i));
}

/* Checks in progress count: parallel sessions try no more than one. */
static void
test_anvil_pending(void **state)
{
	char	 key[ANVIL_KEY_LEN];
	int	 i;

	(void)state;
	anvil_clear();
	for (i = 0; i < 3; i++)
		assert_true(anvil_begin("192.0.2.9", 3, 1000));
	assert_false(anvil_begin("192.0.2.9", 3, 1000));
	assert_true(anvil_throttled("::ffff:192.0.2.9", 3, 1000));
	assert_true(anvil_begin("192.0.2.10", 3, 1000));
	/* one succeeds: room for another; one fails: it stays counted */
	anvil_end("192.0.2.9", 1001);
	assert_true(anvil_begin("192.0.2.9", 3, 1002));
	anvil_end("192.0.2.9", 1003);
	anvil_failed("192.0.2.9", 3, 1003);
	assert_false(anvil_begin("192.0.2.9", 3, 1004));
	anvil_end("192.0.2.9", 1005);
	anvil_end("192.0.2.9", 1005);
	assert_true(anvil_begin("192.0.2.9", 3, 1006));
	anvil_end("192.0.2.9", 1007);
	/* more ends than begins do not make room */
	anvil_end("192.0.2.9", 1008);
	anvil_failed("192.0.2.9", 3, 1009);
	anvil_failed("192.0.2.9", 3, 1009);
	assert_false(anvil_begin("192.0.2.9", 3, 1010));
	/* 0: off, nothing counted */
	assert_true(anvil_begin("198.51.100.1", 0, 1000));
	assert_false(anvil_throttled("198.51.100.1", 1, 1000));
	/*
	 * Checks that end well free their slot: a thousand clients that
	 * log in do not push out the failures of another.
	 */
	anvil_end("192.0.2.10", 1011);
	for (i = 0; i < 4 * ANVIL_SLOTS; i++) {
		(void)snprintf(key, sizeof(key), "10.1.%d.%d", i / 256,
		    i % 256);
		assert_true(anvil_begin(key, 3, 2000 + i));
		anvil_end(key, 2000 + i);
	}
	assert_true(anvil_throttled("192.0.2.9", 3, 2000 + i));
	/* a full table forgets failures before checks in progress */
	anvil_clear();
	assert_true(anvil_begin("198.51.100.9", 1, 1000));
	for (i = 0; i < 2 * ANVIL_SLOTS; i++) {
		(void)snprintf(key, sizeof(key), "10.2.%d.%d", i / 256,
		    i % 256);
		anvil_failed(key, 3, 2000 + i);
	}
	assert_false(anvil_begin("198.51.100.9", 1, 2000 + i));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_decode),
		cmocka_unit_test(test_descriptors),
		cmocka_unit_test(test_late_answer),
		cmocka_unit_test(test_anvil),
		cmocka_unit_test(test_anvil_pending),
	};

	log_init(1, 0);
	return (cmocka_run_group_tests_name("channel", tests, NULL, NULL));
}
