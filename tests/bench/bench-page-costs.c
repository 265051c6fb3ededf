/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a page costs a new process on this machine, for reading the
 * benchmarks that start one per call or per image. In µs per 4 KiB page
 * (huge pages off), the best of three rounds over 16 MiB:
 *
 *   inherited read   a forked child reads a page its parent had written:
 *                    fork copied the page table entry, so the kernel takes
 *                    no fault; on bare metal this is a TLB miss, under a
 *                    hypervisor that shadows page tables it is an exit;
 *   copy on write    the child then writes such a page (read already): a
 *                    fault, a copy and a flush of the TLB;
 *   zero fill        a process writes a page it never touched: a fault;
 *   warm             the same write again, for scale.
 *
 *   bench-page-costs
 *
 * Prints one line: "page costs (us per page): inherited read R, copy on
 * write C, zero fill Z, warm W". */
#include <glib.h>

#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_PAGES 4096
#define PAGE 4096
#define ROUNDS 3

typedef struct {
  double inherited_read;
  double copy_on_write;
  double zero_fill;
  double warm;
} Costs;

static double
per_page (gint64 start)
{
  return (double) (g_get_monotonic_time () - start) / N_PAGES;
}

static char *
map_pages (void)
{
  char *area = mmap (NULL, (size_t) N_PAGES * PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  if (area == MAP_FAILED)
    return NULL;
  /* Small pages, or the figures would be per huge page. It fails only
   * where the kernel has no transparent huge pages: small pages anyway. */
  if (madvise (area, (size_t) N_PAGES * PAGE, MADV_NOHUGEPAGE) != 0)
    { /* nothing to undo */ }
  return area;
}

/* One round; FALSE when something failed. */
static gboolean
measure (Costs *costs)
{
  volatile char *area = (volatile char *) map_pages ();
  int pipe_fds[2];
  gint64 start;
  double child[2];
  int status;
  pid_t pid;

  if (area == NULL)
    return FALSE;
  if (pipe (pipe_fds) != 0)
    {
      munmap ((void *) area, (size_t) N_PAGES * PAGE);
      return FALSE;
    }

  start = g_get_monotonic_time ();
  for (gsize i = 0; i < N_PAGES; i++)
    area[i * PAGE] = 1;
  costs->zero_fill = per_page (start);

  start = g_get_monotonic_time ();
  for (gsize i = 0; i < N_PAGES; i++)
    area[i * PAGE]++;
  costs->warm = per_page (start);

  pid = fork ();
  if (pid < 0)
    {
      close (pipe_fds[0]);
      close (pipe_fds[1]);
      munmap ((void *) area, (size_t) N_PAGES * PAGE);
      return FALSE;
    }
  if (pid == 0)
    {
      char sum = 0;

      start = g_get_monotonic_time ();
      for (gsize i = 0; i < N_PAGES; i++)
        sum += area[i * PAGE];
      child[0] = per_page (start);

      start = g_get_monotonic_time ();
      for (gsize i = 0; i < N_PAGES; i++)
        area[i * PAGE] = sum;
      child[1] = per_page (start);

      _exit (write (pipe_fds[1], child, sizeof child) == sizeof child ? 0 : 1);
    }

  close (pipe_fds[1]);
  if (read (pipe_fds[0], child, sizeof child) != sizeof child)
    child[0] = child[1] = -1;
  close (pipe_fds[0]);
  munmap ((void *) area, (size_t) N_PAGES * PAGE);
  if (waitpid (pid, &status, 0) != pid || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return FALSE;

  costs->inherited_read = child[0];
  costs->copy_on_write = child[1];
  return child[0] >= 0;
}

int
main (void)
{
  Costs best = { G_MAXDOUBLE, G_MAXDOUBLE, G_MAXDOUBLE, G_MAXDOUBLE };

  for (int round = 0; round < ROUNDS; round++)
    {
      Costs costs;

      if (!measure (&costs))
        {
          fprintf (stderr, "bench-page-costs: a round failed\n");
          return 1;
        }
      best.inherited_read = MIN (best.inherited_read, costs.inherited_read);
      best.copy_on_write = MIN (best.copy_on_write, costs.copy_on_write);
      best.zero_fill = MIN (best.zero_fill, costs.zero_fill);
      best.warm = MIN (best.warm, costs.warm);
    }

  printf ("page costs (us per page): inherited read %.2f, copy on write %.2f, "
          "zero fill %.2f, warm %.3f\n",
          best.inherited_read, best.copy_on_write, best.zero_fill, best.warm);
  return 0;
}
