/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Calls per second of AforkPool against the best a person could write by
 * hand (a C ping-pong over a socketpair) and Python's ProcessPoolExecutor,
 * side by side in one run, unpinned and pinned to one CPU; the ratios are
 * the figures that matter on a noisy machine.
 *
 *   afork-pool-bench [--quick] [SECONDS]
 *
 * AFORK_BENCH_DIR names the directory of the module and of ppe_bench.py. */
#include <afork/afork.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static double seconds = 1.5;

/* How long a synchronous afork_pool_call () waits awake for a reply
 * (AWAKE_WAIT_USEC in afork/afork-pool-sync.c). */
#define AWAKE_USEC 50
static char *module_path;

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

/* The hand-written pipeline: as the ping-pong, with @load requests in
 * flight. The parent writes what the window allows in one write and reads
 * every answer there is; the child answers each request as soon as it has
 * it, with a write of its own, as a worker must (an answer held back would
 * die with the worker). The best the queued calls of a pool can hope for. */
static double
bench_pipeline (guint load)
{
  int sv[2];
  pid_t pid;
  guint64 sent = 0, got = 0;
  double start;
  char buf[64 * 1024] = { 0 };

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    g_error ("socketpair: %s", g_strerror (errno));

  pid = fork ();
  if (pid == 0)
    {
      gsize have = 0;

      close (sv[0]);
      for (;;)
        {
          gssize res = read (sv[1], buf + have, sizeof buf - have);
          gsize pos;

          if (res <= 0)
            _exit (0);
          have += res;
          for (pos = 0; pos + 8 <= have; pos += 8)
            if (write (sv[1], buf + pos, 8) != 8)
              _exit (1);
          memmove (buf, buf + pos, have - pos);
          have -= pos;
        }
    }
  close (sv[1]);

  start = now ();
  for (;;)
    {
      guint64 n = MIN (load - (sent - got), sizeof buf / 8);
      gssize res;

      if (n > 0 && write (sv[0], buf, n * 8) != (gssize) (n * 8))
        g_error ("pipeline broke");
      sent += n;
      res = read (sv[0], buf, sizeof buf);
      if (res <= 0 || res % 8 != 0)
        g_error ("pipeline broke");
      got += res / 8;
      if (now () - start >= seconds)
        break;
    }
  close (sv[0]);
  waitpid (pid, NULL, 0);

  return got / (now () - start);
}

/* The hand-written ping-pong: 8 bytes each way over a socketpair,
 * blocking. With @awake_usec, the caller first waits that long awake for
 * each answer (reading without blocking) before it blocks, as a
 * synchronous afork_pool_call () does: the same trick, by hand. */
static double
bench_pingpong (guint awake_usec)
{
  int sv[2];
  pid_t pid;
  guint64 n = 0;
  double start;
  char buf[8] = { 0 };

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    g_error ("socketpair: %s", g_strerror (errno));

  pid = fork ();
  if (pid == 0)
    {
      close (sv[0]);
      while (read (sv[1], buf, sizeof buf) == sizeof buf)
        if (write (sv[1], buf, sizeof buf) != sizeof buf)
          break;
      _exit (0);
    }
  close (sv[1]);

  start = now ();
  for (;;)
    {
      gssize got = -1;

      if (write (sv[0], buf, sizeof buf) != sizeof buf)
        g_error ("ping-pong broke");
      if (awake_usec > 0)
        {
          gint64 until = g_get_monotonic_time () + awake_usec;

          do
            got = recv (sv[0], buf, sizeof buf, MSG_DONTWAIT);
          while (got < 0 && errno == EAGAIN && g_get_monotonic_time () < until);
        }
      if (got < 0)
        got = read (sv[0], buf, sizeof buf);
      if (got != sizeof buf)
        g_error ("ping-pong broke");
      n++;
      if (n % 256 == 0 && now () - start >= seconds)
        break;
    }
  close (sv[0]);
  waitpid (pid, NULL, 0);

  return n / (now () - start);
}

static double
bench_ppe (void)
{
  g_autofree char *script = g_build_filename (g_getenv ("AFORK_BENCH_DIR") ? g_getenv ("AFORK_BENCH_DIR") : ".",
                                              "ppe_bench.py", NULL);
  g_autofree char *secs = g_strdup_printf ("%.1f", seconds);
  const char *argv[] = { "/usr/bin/python3", script, secs, NULL };
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  int status;
  const char *rate;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL,
                     &status, &error) || !g_spawn_check_wait_status (status, &error))
    {
      g_printerr ("ProcessPoolExecutor: %s\n", error->message);
      return 0;
    }
  rate = strstr (out, "rate ");

  return rate != NULL ? g_ascii_strtod (rate + 5, NULL) : 0;
}

/* A template of a fresh server (it inherits the current CPU affinity). */
static AforkProcess *
make_template (void)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *template_process = afork_process_new_exec (&error);

  g_assert_no_error (error);
  afork_process_require (template_process, module_path);

  return template_process;
}

static AforkPool *
make_pool (void)
{
  g_autoptr(AforkProcess) template_process = make_template ();

  return afork_pool_new (template_process);
}

static void
call_or_die (AforkPool *pool)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = afork_pool_call (pool, "bench_echo", g_variant_new ("(u)", 1),
                                               NULL, &error);

  g_assert_no_error (error);
}

static double
bench_pool_one_at_a_time (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  guint64 n = 0;
  double start;

  for (guint i = 0; i < 200; i++)
    call_or_die (pool);

  start = now ();
  for (;;)
    {
      call_or_die (pool);
      n++;
      if (n % 64 == 0 && now () - start >= seconds)
        break;
    }

  return n / (now () - start);
}

static void
count_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  guint *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = afork_pool_call_finish (AFORK_POOL (object), result, &error);

  g_assert_no_error (error);
  (*pending)--;
}

/* One asynchronous call at a time, each awaited in the main context: what
 * a GTK program does. Its reply goes through the pool thread and the
 * caller's context, and no one waits for it awake. */
static double
bench_pool_one_at_a_time_async (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  guint64 n = 0;
  double start = 0;

  for (guint64 i = 0; ; i++)
    {
      guint pending = 1;

      if (i == 200)
        start = now ();
      afork_pool_call_async (pool, "bench_echo", g_variant_new ("(u)", 1), NULL,
                             count_cb, &pending);
      while (pending > 0)
        g_main_context_iteration (NULL, TRUE);
      if (i >= 200)
        n++;
      if (n > 0 && n % 64 == 0 && now () - start >= seconds)
        break;
    }

  return n / (now () - start);
}

static int compare_doubles (const void *a,
                            const void *b);

#define QUEUED_BATCHES 7

/* Batches of @n calls queued at once on one pool, one after the other.
 * The first one also pays for the memory the process grows by to hold
 * @n calls at once (page faults); the median of the others is what a
 * program that queues batches gets. */
static void
bench_pool_queued (guint   n,
                   double *first,
                   double *later)
{
  g_autoptr(AforkPool) pool = make_pool ();
  double rates[QUEUED_BATCHES];

  afork_pool_set_max_workers (pool, 1);
  afork_pool_set_load (pool, 32);
  call_or_die (pool);

  for (guint batch = 0; batch < QUEUED_BATCHES; batch++)
    {
      guint pending = 0;
      double start = now ();

      for (guint i = 0; i < n; i++)
        {
          pending++;
          afork_pool_call_async (pool, "bench_echo", g_variant_new ("(u)", i), NULL, count_cb,
                                 &pending);
        }
      while (pending > 0)
        g_main_context_iteration (NULL, TRUE);
      rates[batch] = n / (now () - start);
    }

  *first = rates[0];
  qsort (rates + 1, QUEUED_BATCHES - 1, sizeof (double), compare_doubles);
  *later = rates[1 + (QUEUED_BATCHES - 1) / 2];
}

static double
bench_pool_fresh (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  guint64 n = 0;
  double start;

  afork_pool_set_max_calls_per_worker (pool, 1);
  for (guint i = 0; i < 20; i++)
    call_or_die (pool);

  start = now ();
  for (;;)
    {
      call_or_die (pool);
      n++;
      if (n % 16 == 0 && now () - start >= seconds)
        break;
    }

  return n / (now () - start);
}

/* afork_process_fork () of the same kind of template + run, waiting for
 * the process to end (end of file on its connection). */
static double
bench_fork_run (void)
{
  g_autoptr(AforkProcess) template_process = make_template ();
  guint64 n = 0;
  double start = 0;

  for (guint i = 0; ; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) process = afork_process_fork (template_process);
      g_autoptr(GSocketConnection) connection = afork_process_run (process, "bench_run_nothing",
                                                                   NULL, &error);
      char byte;

      g_assert_no_error (error);
      g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                           &byte, 1, NULL, NULL);
      if (i == 20)
        start = now ();
      if (i > 20)
        {
          n++;
          if (n % 16 == 0 && now () - start >= seconds)
            break;
        }
    }

  return n / (now () - start);
}

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/* The pid of this program's pool worker (its title names the loop). */
static GPid
find_worker (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  g_autofree char *owner = g_strdup_printf ("afork %d ", (int) getpid ());
  const char *name;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *cmd_path = g_strdup_printf ("/proc/%s/cmdline", name);
      g_autofree char *cmd = NULL;

      if (g_ascii_isdigit (name[0]) &&
          g_file_get_contents (cmd_path, &cmd, NULL, NULL) &&
          g_str_has_prefix (cmd, owner) && strstr (cmd, "pool-worker") != NULL)
        return (GPid) atoi (name);
    }

  return 0;
}

/* Milliseconds of the first call after the only worker was SIGKILLed
 * (its death seen by the template), median of @rounds. */
static double
bench_after_kill (guint rounds)
{
  g_autoptr(AforkPool) pool = make_pool ();
  double samples[64];

  rounds = MIN (rounds, G_N_ELEMENTS (samples));
  afork_pool_set_max_workers (pool, 1);

  for (guint r = 0; r < rounds; r++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply = NULL;
      g_autofree char *path = NULL;
      GPid pid = 0;
      double start;

      call_or_die (pool);
      pid = find_worker ();
      if (pid == 0)
        g_error ("no worker found");

      kill (pid, SIGKILL);
      path = g_strdup_printf ("/proc/%d", (int) pid);
      while (g_file_test (path, G_FILE_TEST_EXISTS))
        g_usleep (100);

      start = now ();
      reply = afork_pool_call (pool, "bench_echo", g_variant_new ("(u)", 1), NULL, &error);
      samples[r] = (now () - start) * 1000;
      /* The call may have been written to the dead worker before the pool
       * saw the hang-up: then it fails, and the next one is measured. */
      if (error != NULL)
        {
          g_clear_error (&error);
          g_clear_pointer (&reply, g_variant_unref);
          start = now ();
          reply = afork_pool_call (pool, "bench_echo", g_variant_new ("(u)", 1), NULL, &error);
          samples[r] = (now () - start) * 1000;
          g_assert_no_error (error);
        }
    }

  qsort (samples, rounds, sizeof (double), compare_doubles);

  return samples[rounds / 2];
}

/* Private dirty memory of an idle worker, in KiB. */
static double
bench_idle_memory (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GDir) dir = NULL;
  g_autofree char *owner = g_strdup_printf ("afork %d ", (int) getpid ());
  const char *name;
  double kib = -1;

  for (guint i = 0; i < 100; i++)
    call_or_die (pool);
  g_usleep (100 * 1000);

  dir = g_dir_open ("/proc", 0, NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *cmd_path = g_strdup_printf ("/proc/%s/cmdline", name);
      g_autofree char *cmd = NULL;
      g_autofree char *smaps_path = g_strdup_printf ("/proc/%s/smaps_rollup", name);
      g_autofree char *smaps = NULL;
      const char *line;

      if (!g_ascii_isdigit (name[0]) ||
          !g_file_get_contents (cmd_path, &cmd, NULL, NULL) ||
          !g_str_has_prefix (cmd, owner) || strstr (cmd, "pool-worker") == NULL ||
          !g_file_get_contents (smaps_path, &smaps, NULL, NULL))
        continue;

      line = strstr (smaps, "Private_Dirty:");
      if (line != NULL)
        kib = g_ascii_strtod (line + strlen ("Private_Dirty:"), NULL);
    }

  return kib;
}

static void
pin_to_one_cpu (void)
{
  cpu_set_t set;

  CPU_ZERO (&set);
  CPU_SET (0, &set);
  if (sched_setaffinity (0, sizeof set, &set) != 0)
    g_printerr ("cannot pin to CPU 0: %s\n", g_strerror (errno));
}

int
main (int    argc,
      char **argv)
{
  const char *dir = g_getenv ("AFORK_BENCH_DIR");
  double pingpong[2], ppe[2], one[2], pingpong_awake = 0;
  double one_async, pipeline, queued_first, queued, fresh, fork_run, after_kill, memory;
  guint n_queued = 10000;

  for (int i = 1; i < argc; i++)
    {
      if (g_str_equal (argv[i], "--quick"))
        {
          seconds = 0.2;
          n_queued = 1000;
        }
      else
        seconds = g_ascii_strtod (argv[i], NULL);
    }

  module_path = g_build_filename (dir != NULL ? dir : ".", "libafork-pool-bench-module.so", NULL);

  setvbuf (stdout, NULL, _IOLBF, 0);
  printf ("afork pool benchmark: %.1f s per row, %u CPUs\n", seconds, g_get_num_processors ());

  for (int pinned = 0; pinned < 2; pinned++)
    {
      if (pinned)
        pin_to_one_cpu ();
      printf ("\n%s\n", pinned ? "pinned to CPU 0" : "unpinned");
      pingpong[pinned] = bench_pingpong (0);
      printf ("  C ping-pong over a socketpair      %10.0f round trips/s\n", pingpong[pinned]);
      if (!pinned)
        {
          pingpong_awake = bench_pingpong (AWAKE_USEC);
          printf ("  the same, waiting awake %u us       %10.0f round trips/s\n", AWAKE_USEC,
                  pingpong_awake);
        }
      ppe[pinned] = bench_ppe ();
      printf ("  ProcessPoolExecutor (1 worker)     %10.0f calls/s\n", ppe[pinned]);
      one[pinned] = bench_pool_one_at_a_time ();
      printf ("  afork_pool_call, one at a time     %10.0f calls/s\n", one[pinned]);
      fflush (stdout);
    }

  {
    cpu_set_t set;

    CPU_ZERO (&set);
    for (guint c = 0; c < g_get_num_processors (); c++)
      CPU_SET (c, &set);
    sched_setaffinity (0, sizeof set, &set);
  }

  printf ("\nunpinned\n");
  one_async = bench_pool_one_at_a_time_async ();
  printf ("  afork_pool_call_async, one at a time %8.0f calls/s\n", one_async);
  pipeline = bench_pipeline (32);
  printf ("  C pipeline, 32 in flight           %10.0f round trips/s\n", pipeline);
  bench_pool_queued (n_queued, &queued_first, &queued);
  printf ("  %u calls queued, load 32          %10.0f calls/s (median of %u batches after the first)\n",
          n_queued, queued, QUEUED_BATCHES - 1);
  printf ("    its first batch, on a fresh heap %10.0f calls/s\n", queued_first);
  fresh = bench_pool_fresh ();
  printf ("  max-calls-per-worker 1             %10.0f calls/s\n", fresh);
  fork_run = bench_fork_run ();
  printf ("  afork_process_fork + run           %10.0f processes/s\n", fork_run);
  after_kill = bench_after_kill (seconds < 1 ? 5 : 21);
  printf ("  call after a SIGKILLed worker      %10.2f ms (median)\n", after_kill);
  memory = bench_idle_memory ();
  printf ("  idle worker, private dirty         %10.0f KiB\n", memory);

  printf ("\nratios (targets in brackets)\n");
  printf ("  one at a time / ping-pong, unpinned  %5.2f  [>= 0.8]\n", one[0] / pingpong[0]);
  printf ("  one at a time / ping-pong, pinned    %5.2f  [>= 0.4]\n", one[1] / pingpong[1]);
  printf ("    one at a time / ping-pong waiting awake, unpinned %5.2f\n", one[0] / pingpong_awake);
  if (ppe[0] > 0)
    printf ("  one at a time / ProcessPoolExecutor  %5.2f  [>= 3]\n", one[0] / ppe[0]);
  printf ("  queued (load 32) / one at a time     %5.2f  [>= 10]\n", queued / one[0]);
  printf ("    first batch / one at a time        %5.2f\n", queued_first / one[0]);
  printf ("    asynchronous one at a time / ping-pong %5.2f, queued / it %5.2f\n",
          one_async / pingpong[0], queued / one_async);
  printf ("    for scale: C pipeline / ping-pong  %5.2f, queued / C pipeline %5.2f\n",
          pipeline / pingpong[0], queued / pipeline);
  printf ("  fresh per call / fork + run          %5.2f  [>= 0.8]\n", fresh / fork_run);
  printf ("  call after SIGKILL                   %5.2f ms  [<= 5]\n", after_kill);
  printf ("  idle worker private dirty            %5.0f KiB  [< 300]\n", memory);

  g_free (module_path);

  return 0;
}
