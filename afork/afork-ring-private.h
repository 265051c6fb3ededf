/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A pool worker's replies travel in a ring of shared memory (a memfd the
 * pool makes and sends in its first frame) instead of its socket. A reply
 * written there survives the worker's crash, as one written to the socket
 * does, without a system call for each: the worker writes one byte to the
 * socket only to wake a reader that sleeps (docs/design.md, "Replies in
 * shared memory"). Descriptors still go through the socket, before the
 * bytes of the frame that announces them. */

#define AFORK_RING_SIZE     (256 * 1024)
#define AFORK_RING_MIN_SIZE 4096
#define AFORK_RING_MAX_SIZE (16 * 1024 * 1024)

typedef struct _AforkRing AforkRing;

/* The reader's side (the pool): makes the memory; *@fd is the memfd to
 * send (the caller closes it once sent). */
AforkRing *_afork_ring_new         (guint32      size,
                                    int         *fd,
                                    GError     **error);
/* The writer's side (the worker): maps what it was sent. */
AforkRing *_afork_ring_map         (int          fd,
                                    guint32      size,
                                    GError     **error);
void       _afork_ring_free        (AforkRing   *ring);

/* Writer. Copies @len bytes in, waiting for room as long as it takes,
 * then writes one byte on @sock if the reader sleeps. Returns FALSE,
 * errno set, if the reader went away. */
gboolean   _afork_ring_write       (AforkRing   *ring,
                                    int          sock,
                                    const guint8 *data,
                                    gsize        len);
/* Writer: whether the reader said it went away (or a write found it
 * gone); nothing more is written then. */
gboolean   _afork_ring_reader_gone (AforkRing   *ring);
/* Reader: tells the writer it is going away, before it closes the
 * socket; a writer waiting for room stops waiting. */
void       _afork_ring_close_reader (AforkRing  *ring);

/* Reader. What the writer has published: the bytes up to there, and the
 * descriptors sent before them, can be read. Marks the reader awake. */
guint64    _afork_ring_get_head    (AforkRing   *ring);
/* Reader. Appends the bytes up to @head to @in. Returns FALSE when @head
 * is impossible (a writer that broke the ring). */
gboolean   _afork_ring_read        (AforkRing   *ring,
                                    guint64      head,
                                    GByteArray  *in,
                                    GError     **error);
/* Reader, about to sleep on the socket: from now on the writer wakes it.
 * Returns TRUE if bytes came in the meantime (read them instead). */
gboolean   _afork_ring_reader_sleeps (AforkRing *ring);
/* Reader, under its lock: its position, for _afork_ring_wait_awake (). */
guint64    _afork_ring_get_pos     (AforkRing   *ring);
/* Any thread: waits awake, at most @usec, for bytes beyond @pos. TRUE:
 * there are some, and the reader is marked awake (read them); FALSE: it
 * is marked asleep, sleep on the socket. */
gboolean   _afork_ring_wait_awake  (AforkRing   *ring,
                                    guint64      pos,
                                    gint64       usec);

G_END_DECLS
