/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A byte ring in shared memory, one writer (a pool worker) and one reader
 * (the pool, under its lock), for the worker's replies.
 *
 * The header holds two positions that only grow: `head`, the bytes the
 * writer has published, and `tail`, the bytes the reader has taken. The
 * reader never trusts what the writer may change: it keeps its own copy
 * of `tail`, copies bytes out before parsing them, and a `head` more than
 * a ring ahead of it is an error, never a read out of bounds. The memfd is
 * sealed against shrinking, so the writer cannot make the reader's copy
 * fault either.
 *
 * Waking. The reader sets `reader_waiting` before it sleeps on the socket,
 * then looks at `head` once more; the writer publishes `head`, then swaps
 * `reader_waiting` to 0 and, if it was 1, writes one byte to the socket.
 * With a full barrier between the store and the load on each side, either
 * the reader sees the new bytes or the writer sees that it sleeps. The
 * writer waits for room on the futex `writer_waiting`, which the reader
 * wakes after it took bytes; it looks at its socket between waits, so a
 * reader that went away does not leave it waiting for ever. */
#include "afork-private.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "afork-ring-private.h"

/* How long the writer sleeps at most between two looks at its socket. */
#define WRITER_WAIT_NS (20 * 1000 * 1000)

typedef struct
{
  guint64 head;            /* writer: bytes published */
  guint32 reader_waiting;  /* 1: the reader sleeps, or is about to */
  guint32 reader_closed;   /* 1: the reader went away: write nothing more */
  guint8  pad1[48];        /* the two sides' words on their own cache lines */
  guint64 tail;            /* reader: bytes taken */
  guint32 writer_waiting;  /* futex: 1 while the writer waits for room */
  guint32 pad2;
} RingHeader;

#define HEADER_SIZE 4096

G_STATIC_ASSERT (sizeof (RingHeader) <= HEADER_SIZE);

struct _AforkRing
{
  RingHeader *header;
  guint8     *data;
  gsize       size;     /* a power of two */
  guint64     pos;      /* this side's own position: head or tail */
  gboolean    broken;   /* the writer's: the reader is gone */
};

static gboolean
size_is_valid (guint32 size)
{
  return size >= AFORK_RING_MIN_SIZE && size <= AFORK_RING_MAX_SIZE &&
         (size & (size - 1)) == 0;
}

static AforkRing *
ring_map (int       fd,
          guint32   size,
          GError  **error)
{
  AforkRing *ring;
  void *map;

  map = mmap (NULL, HEADER_SIZE + (gsize) size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED)
    {
      _afork_set_error_errno (error, AFORK_ERROR_FAILED, errno, "mmap");
      return NULL;
    }

  ring = g_new0 (AforkRing, 1);
  ring->header = map;
  ring->data = (guint8 *) map + HEADER_SIZE;
  ring->size = size;

  return ring;
}

AforkRing *
_afork_ring_new (guint32   size,
                 int      *fd,
                 GError  **error)
{
  AforkRing *ring;
  int memfd;

  g_return_val_if_fail (size_is_valid (size), NULL);

  memfd = memfd_create ("afork-pool-replies", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0)
    {
      _afork_set_error_errno (error, AFORK_ERROR_FAILED, errno, "memfd_create");
      return NULL;
    }

  /* Sealed at its size: a worker that truncated it would make the pool
   * fault when it reads. */
  if (ftruncate (memfd, HEADER_SIZE + (off_t) size) < 0 ||
      fcntl (memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
    {
      _afork_set_error_errno (error, AFORK_ERROR_FAILED, errno, "memfd");
      close (memfd);
      return NULL;
    }

  ring = ring_map (memfd, size, error);
  if (ring == NULL)
    {
      close (memfd);
      return NULL;
    }

  /* Nobody reads yet: the first bytes wake the reader. */
  ring->header->reader_waiting = 1;
  *fd = memfd;

  return ring;
}

AforkRing *
_afork_ring_map (int       fd,
                 guint32   size,
                 GError  **error)
{
  struct stat st;

  if (!size_is_valid (size))
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                   _("Invalid size %u of a pool worker's reply ring"), size);
      return NULL;
    }
  if (fstat (fd, &st) < 0 || st.st_size < HEADER_SIZE + (off_t) size)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                   _("The memory of a pool worker's reply ring is too small"));
      return NULL;
    }

  return ring_map (fd, size, error);
}

void
_afork_ring_free (AforkRing *ring)
{
  if (ring == NULL)
    return;

  munmap (ring->header, HEADER_SIZE + ring->size);
  g_free (ring);
}

static void
futex_wait (guint32 *word,
            guint32  value)
{
  struct timespec timeout = { 0, WRITER_WAIT_NS };

  /* Shared between processes: not FUTEX_PRIVATE_FLAG. */
  syscall (SYS_futex, word, FUTEX_WAIT, value, &timeout, NULL, 0);
}

static void
futex_wake (guint32 *word)
{
  syscall (SYS_futex, word, FUTEX_WAKE, G_MAXINT, NULL, NULL, 0);
}

/* Whether the reader hung up @sock. */
static gboolean
reader_gone (int sock)
{
  struct pollfd pfd = { sock, 0, 0 };

  return poll (&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

gboolean
_afork_ring_reader_gone (AforkRing *ring)
{
  if (!ring->broken && __atomic_load_n (&ring->header->reader_closed, __ATOMIC_ACQUIRE))
    ring->broken = TRUE;

  return ring->broken;
}

void
_afork_ring_close_reader (AforkRing *ring)
{
  __atomic_store_n (&ring->header->reader_closed, 1, __ATOMIC_RELEASE);
  futex_wake (&ring->header->writer_waiting);
}

/* One byte on @sock if the reader sleeps. */
static gboolean
ring_notify (AforkRing *ring,
             int        sock)
{
  RingHeader *h = ring->header;
  gssize res;

  if (_afork_ring_reader_gone (ring))
    {
      errno = EPIPE;
      return FALSE;
    }

  __atomic_thread_fence (__ATOMIC_SEQ_CST);
  if (__atomic_load_n (&h->reader_waiting, __ATOMIC_RELAXED) == 0 ||
      __atomic_exchange_n (&h->reader_waiting, 0, __ATOMIC_SEQ_CST) == 0)
    return TRUE;

  do
    res = send (sock, "w", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (res < 0 && errno == EINTR);

  /* A full socket already holds a wake-up. */
  if (res == 1 || errno == EAGAIN || errno == EWOULDBLOCK)
    return TRUE;
  ring->broken = TRUE;
  return FALSE;
}

gboolean
_afork_ring_write (AforkRing    *ring,
                   int           sock,
                   const guint8 *data,
                   gsize         len)
{
  RingHeader *h = ring->header;

  while (len > 0)
    {
      guint64 tail = __atomic_load_n (&h->tail, __ATOMIC_ACQUIRE);
      gsize room, at, n, first;

      /* Once the reader is gone, no write waits for it. */
      if (_afork_ring_reader_gone (ring))
        {
          errno = EPIPE;
          return FALSE;
        }

      /* The reader's tail is never ahead of what was written. */
      if (tail > ring->pos || ring->pos - tail > ring->size)
        {
          ring->broken = TRUE;
          errno = EPROTO;
          return FALSE;
        }
      room = ring->size - (gsize) (ring->pos - tail);

      if (room == 0)
        {
          /* The reader must know of what is there before we wait. */
          if (!ring_notify (ring, sock))
            return FALSE;
          __atomic_store_n (&h->writer_waiting, 1, __ATOMIC_SEQ_CST);
          if (__atomic_load_n (&h->tail, __ATOMIC_SEQ_CST) == tail)
            {
              futex_wait (&h->writer_waiting, 1);
              if (reader_gone (sock))
                ring->broken = TRUE;
            }
          continue;
        }

      n = MIN (len, room);
      at = (gsize) (ring->pos & (ring->size - 1));
      first = MIN (n, ring->size - at);
      memcpy (ring->data + at, data, first);
      memcpy (ring->data, data + first, n - first);
      ring->pos += n;
      __atomic_store_n (&h->head, ring->pos, __ATOMIC_RELEASE);
      data += n;
      len -= n;
    }

  return ring_notify (ring, sock);
}

guint64
_afork_ring_get_head (AforkRing *ring)
{
  RingHeader *h = ring->header;

  /* Awake: the writer need not wake us until we sleep again. */
  __atomic_store_n (&h->reader_waiting, 0, __ATOMIC_RELAXED);

  return __atomic_load_n (&h->head, __ATOMIC_ACQUIRE);
}

gboolean
_afork_ring_read (AforkRing   *ring,
                  guint64      head,
                  GByteArray  *in,
                  GError     **error)
{
  RingHeader *h = ring->header;
  gsize avail, at, first;
  guint old_len;

  if (head < ring->pos || head - ring->pos > ring->size)
    {
      g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                           _("A pool worker broke the ring of its replies"));
      return FALSE;
    }

  avail = (gsize) (head - ring->pos);
  if (avail == 0)
    return TRUE;

  old_len = in->len;
  g_byte_array_set_size (in, old_len + avail);
  at = (gsize) (ring->pos & (ring->size - 1));
  first = MIN (avail, ring->size - at);
  memcpy (in->data + old_len, ring->data + at, first);
  memcpy (in->data + old_len + first, ring->data, avail - first);
  ring->pos = head;
  __atomic_store_n (&h->tail, head, __ATOMIC_SEQ_CST);

  if (__atomic_load_n (&h->writer_waiting, __ATOMIC_SEQ_CST) != 0)
    {
      __atomic_store_n (&h->writer_waiting, 0, __ATOMIC_SEQ_CST);
      futex_wake (&h->writer_waiting);
    }

  return TRUE;
}

/* Marks the reader asleep, then looks at `head` once more: TRUE if the
 * writer published beyond @pos meanwhile (and may not have seen the mark,
 * so the reader reads instead of sleeping). */
static gboolean
reader_sleeps_at (RingHeader *h,
                  guint64     pos)
{
  __atomic_store_n (&h->reader_waiting, 1, __ATOMIC_SEQ_CST);

  return __atomic_load_n (&h->head, __ATOMIC_SEQ_CST) != pos;
}

/* The reader's position, for _afork_ring_wait_awake (): read where the
 * reader reads (under its lock). */
guint64
_afork_ring_get_pos (AforkRing *ring)
{
  return ring->pos;
}

/* Waits awake, for at most @usec, for the writer to publish beyond @pos
 * (the reader's position when it last held its lock). Awake, the reader
 * has the writer skip the byte that would wake it, and sees what comes as
 * soon as it comes instead of after a wake-up. Whoever clears
 * `reader_waiting` reads what was published: this returns TRUE when there
 * is something to read, and otherwise marks the reader asleep (looking at
 * `head` once more, as _afork_ring_reader_sleeps () does) and returns
 * FALSE, for the caller to sleep on the socket. Any thread may call it:
 * it writes nothing of the reader's own. */
gboolean
_afork_ring_wait_awake (AforkRing *ring,
                        guint64    pos,
                        gint64     usec)
{
  RingHeader *h = ring->header;
  gint64 end = g_get_monotonic_time () + usec;

  __atomic_store_n (&h->reader_waiting, 0, __ATOMIC_SEQ_CST);
  do
    {
      for (guint i = 0; i < 64; i++)
        {
          if (__atomic_load_n (&h->head, __ATOMIC_ACQUIRE) != pos)
            return TRUE;
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause ();
#elif defined(__aarch64__)
          __asm__ __volatile__ ("yield");
#endif
        }
    }
  while (g_get_monotonic_time () < end);

  return reader_sleeps_at (h, pos);
}

gboolean
_afork_ring_reader_sleeps (AforkRing *ring)
{
  return reader_sleeps_at (ring->header, ring->pos);
}
