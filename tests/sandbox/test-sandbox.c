/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sandboxed templates, through real processes: what a sandboxed template
 * and the processes forked from it may and may not do, the machinery
 * (arguments, descriptors, forks, the spare, statuses) working inside,
 * and a sandbox the kernel cannot enforce. The probes are in
 * afork-sandbox-module.c. */
#include "afork-test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULE "afork-sandbox-module"

typedef struct
{
  char *allowed;        /* a directory the sandboxes allow to read */
  char *allowed_file;   /* a file in it */
  char *writable;       /* a directory some sandboxes allow to write */
  char *outside;        /* a directory no sandbox allows */
  char *outside_file;   /* a file in it */
} Fixture;

static void
write_file (const char *path)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, "contents\n", -1, &error);
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  (void) data;
  f->allowed = g_dir_make_tmp ("afork-sandbox-allowed-XXXXXX", &error);
  g_assert_no_error (error);
  f->writable = g_dir_make_tmp ("afork-sandbox-writable-XXXXXX", &error);
  g_assert_no_error (error);
  f->outside = g_dir_make_tmp ("afork-sandbox-outside-XXXXXX", &error);
  g_assert_no_error (error);
  f->allowed_file = g_build_filename (f->allowed, "file", NULL);
  f->outside_file = g_build_filename (f->outside, "file", NULL);
  write_file (f->allowed_file);
  write_file (f->outside_file);
}

static void
remove_tree (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (dir);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  (void) data;
  remove_tree (f->allowed);
  remove_tree (f->writable);
  remove_tree (f->outside);
  g_free (f->allowed);
  g_free (f->allowed_file);
  g_free (f->writable);
  g_free (f->outside);
  g_free (f->outside_file);
}

/* Stands for a test that needs Landlock, on a kernel without it. */
static void
skip_without_landlock (G_GNUC_UNUSED gconstpointer data)
{
  g_test_skip ("This kernel has no Landlock");
}

/* A template from the default one, with the probes loaded, confined by
 * @sandbox. */
static AforkProcess *
sandboxed_template (AforkSandbox *sandbox)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *tmpl = afork_process_new (&error);

  g_assert_no_error (error);
  afork_process_require (tmpl, MODULE);
  afork_process_sandbox (tmpl, sandbox);

  return tmpl;
}

/* Runs the probes of @pairs (probe, expected result, …) in @process and
 * checks each result. */
static void
expect_probes (AforkProcess       *process,
               const char * const *pairs)
{
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GString) expected = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *report = NULL;

  for (guint i = 0; pairs[i] != NULL; i += 2)
    {
      afork_process_send_arg (process, pairs[i]);
      g_string_append_printf (expected, "%s %s\n", pairs[i], pairs[i + 1]);
    }
  g_string_append (expected, "end\n");

  connection = afork_test_run (process, "sandbox_probe_run", &error);
  g_assert_no_error (error);
  report = afork_test_read_connection (connection);
  g_assert_cmpstr (report, ==, expected->str);
}

/* The same probes checked by the call function, in the sandboxed
 * process itself (a call returns to its command loop). */
static void
call_probes (AforkProcess       *process,
             const char * const *pairs)
{
  afork_process_call (process, "sandbox_probe_call", pairs);
}

static void
test_files (Fixture                     *f,
            G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autofree char *open_allowed = g_strconcat ("open:", f->allowed_file, NULL);
  g_autofree char *open_outside = g_strconcat ("open:", f->outside_file, NULL);
  g_autofree char *create_allowed = g_strconcat ("create:", f->allowed, "/new", NULL);
  g_autofree char *create_writable = g_strconcat ("create:", f->writable, "/new", NULL);
  const char *probes[] = {
    "fd:0", "ok",
    open_allowed, "ok",
    open_outside, "EACCES",
    "open:/etc/passwd", "EACCES",
    create_allowed, "EACCES",
    create_writable, "ok",
    NULL
  };
  int outside_fd;

  afork_sandbox_allow_read (sandbox, f->allowed);
  afork_sandbox_allow_write (sandbox, f->writable);
  tmpl = sandboxed_template (sandbox);
  call_probes (tmpl, probes + 2);

  /* A descriptor of a file outside, opened by the parent, works. */
  outside_fd = open (f->outside_file, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (outside_fd, >=, 0);

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(AforkProcess) child = afork_process_fork (tmpl);

      afork_process_send_fd (child, outside_fd);
      expect_probes (child, probes);
      g_unlink (create_writable + strlen ("create:"));
    }

  /* And the template itself, once it runs. */
  afork_process_send_fd (tmpl, outside_fd);
  expect_probes (tmpl, probes);
  close (outside_fd);
}

static void
test_syscalls (G_GNUC_UNUSED Fixture       *f,
               G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  const char *probes[] = {
    "socket-inet", "EAFNOSUPPORT",
    "socket-unix", "ok",
    "ptrace", "EPERM",
    "unshare-user", "EPERM",
    "clone-newuser", "EPERM",
    "exec:/bin/true", "EPERM",
    "fork", "ok",
    NULL
  };

  tmpl = sandboxed_template (sandbox);
  call_probes (tmpl, probes);

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(AforkProcess) child = afork_process_fork (tmpl);
      expect_probes (child, probes);
    }
  expect_probes (tmpl, probes);
}

/* What the sandbox allows when asked: the network, execution. */
static void
test_allowed (G_GNUC_UNUSED Fixture       *f,
              G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(AforkProcess) child = NULL;
  const char *probes[] = {
    "socket-inet", "ok",
    "exec:/bin/true", "ok",
    "ptrace", "EPERM",
    NULL
  };

  afork_sandbox_set_network (sandbox, TRUE);
  afork_sandbox_set_exec (sandbox, TRUE);
  afork_sandbox_allow_read (sandbox, "/usr");
  if (g_file_test ("/lib64", G_FILE_TEST_IS_DIR))
    afork_sandbox_allow_read (sandbox, "/lib64");
  tmpl = sandboxed_template (sandbox);
  child = afork_process_fork (tmpl);
  expect_probes (child, probes);
}

static void
test_memory_limit (G_GNUC_UNUSED Fixture       *f,
                   G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(AforkProcess) child = NULL;
  const char *probes[] = {
    "malloc:1048576", "ok",
    "malloc:1073741824", "ENOMEM",
    NULL
  };

#ifdef AFORK_TEST_SANITIZED
  g_test_skip ("AddressSanitizer reserves more address space than any limit");
  return;
#endif

  afork_sandbox_set_memory_limit (sandbox, 512 * 1024 * 1024);
  tmpl = sandboxed_template (sandbox);
  call_probes (tmpl, probes);
  child = afork_process_fork (tmpl);
  expect_probes (child, probes);
}

/* Whether /proc says @pid has no_new_privs and a seccomp filter. */
static void
assert_confined (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *status = NULL;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (path, &status, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (status, "\nNoNewPrivs:\t1\n"));
  g_assert_nonnull (strstr (status, "\nSeccomp:\t2\n"));
}

/* A CPU-bound run function past the limit is killed, and its status
 * reported like any child exit. Several forks, so that the spare of the
 * sandboxed template is among them. */
static void
test_cpu_limit (G_GNUC_UNUSED Fixture       *f,
                G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  AforkProcess *children[2];

  afork_sandbox_set_cpu_limit (sandbox, 1);
  tmpl = sandboxed_template (sandbox);

  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    {
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *line = NULL;
      GInputStream *in;
      char buf[9];
      gsize n = 0;

      children[i] = afork_process_fork (tmpl);
      connection = afork_test_run (children[i], "sandbox_spin_run", &error);
      g_assert_no_error (error);
      in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
      g_input_stream_read_all (in, buf, sizeof buf, &n, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, "spinning\n", 9);
      assert_confined (afork_process_get_pid (children[i]));
    }

  for (guint i = 0; i < G_N_ELEMENTS (children); i++)
    {
      g_autoptr(GError) error = NULL;
      int sig;

      g_assert_true (afork_process_wait (children[i], NULL, &error));
      g_assert_no_error (error);
      g_assert_true (afork_process_get_if_signaled (children[i]));
      sig = afork_process_get_term_sig (children[i]);
      g_assert_true (sig == SIGXCPU || sig == SIGKILL);
      g_object_unref (children[i]);
    }
}

/* The machinery inside: string and descriptor arguments, forks of forks,
 * the spare, statuses. */
static void
test_machinery (G_GNUC_UNUSED Fixture       *f,
                G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(AforkProcess) sub = NULL;
  int fds[2];

  tmpl = sandboxed_template (sandbox);

  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(AforkProcess) child = afork_process_fork (tmpl);
      g_autoptr(GError) error = NULL;
      g_autofree char *arg = g_strdup_printf ("%u", i);
      const char *probes[] = { "fd:0", "ok", "socket-inet", "EAFNOSUPPORT", NULL };

      afork_test_pipe (fds);
      g_assert_cmpint (write (fds[1], arg, strlen (arg)), ==, (gssize) strlen (arg));
      afork_process_send_fd (child, fds[0]);
      close (fds[0]);
      close (fds[1]);
      expect_probes (child, probes);

      g_assert_true (afork_process_wait (child, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (afork_process_get_if_exited (child));
      g_assert_cmpint (afork_process_get_exit_status (child), ==, 0);
    }

  /* A template forked from the sandboxed one, and its forks. */
  sub = afork_process_fork (tmpl);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(AforkProcess) child = afork_process_fork (sub);
      const char *probes[] = { "ptrace", "EPERM", NULL };

      expect_probes (child, probes);
    }
}

/* A spare forked before the sandbox must not be handed out after it. */
static void
test_spare_before_sandbox (Fixture                     *f,
                           G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(AforkProcess) before = NULL;
  g_autoptr(AforkProcess) after = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *open_outside = g_strconcat ("open:", f->outside_file, NULL);
  const char *free_probes[] = { open_outside, "ok", "socket-inet", "ok", NULL };
  const char *confined_probes[] = { open_outside, "EACCES", "socket-inet", "EAFNOSUPPORT", NULL };

  tmpl = afork_process_new (&error);
  g_assert_no_error (error);
  afork_process_require (tmpl, MODULE);
  before = afork_process_fork (tmpl);
  expect_probes (before, free_probes);

  /* By now the template has forked its spare. */
  afork_process_sandbox (tmpl, sandbox);
  after = afork_process_fork (tmpl);
  expect_probes (after, confined_probes);
}

/* The parent's other templates are not confined. */
static void
test_unsandboxed_sibling (Fixture                     *f,
                          G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(AforkProcess) confined = NULL;
  g_autoptr(AforkProcess) free_process = NULL;
  g_autoptr(AforkProcess) free_exec = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *open_outside = g_strconcat ("open:", f->outside_file, NULL);
  const char *confined_probes[] = { open_outside, "EACCES", "socket-inet", "EAFNOSUPPORT", NULL };
  const char *free_probes[] = { open_outside, "ok", "socket-inet", "ok", "fork", "ok", NULL };

  tmpl = sandboxed_template (sandbox);
  confined = afork_process_fork (tmpl);
  expect_probes (confined, confined_probes);

  free_process = afork_process_new (&error);
  g_assert_no_error (error);
  afork_process_require (free_process, MODULE);
  expect_probes (free_process, free_probes);

  free_exec = afork_process_new_exec (&error);
  g_assert_no_error (error);
  afork_process_require (free_exec, MODULE);
  expect_probes (free_exec, free_probes);

  /* Nor is the parent. */
  g_assert_true (g_file_test (f->outside_file, G_FILE_TEST_IS_REGULAR));
}

/* A sandbox asking for a Landlock ABI newer than the kernel's: refused
 * with AFORK_ERROR_SANDBOX, in the template and its forks; with
 * best-effort, applied with what there is. */
static void
test_unenforceable (G_GNUC_UNUSED Fixture       *f,
                    G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(AforkProcess) child = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  guint abi = afork_sandbox_get_kernel_landlock_abi ();

  afork_sandbox_require_landlock_abi (sandbox, abi + 1);
  tmpl = sandboxed_template (sandbox);
  child = afork_process_fork (tmpl);

  connection = afork_test_run (child, "sandbox_probe_run", &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SANDBOX);
  g_assert_nonnull (strstr (error->message, "Landlock"));
  g_clear_error (&error);

  connection = afork_test_run (tmpl, "sandbox_probe_run", &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SANDBOX);
}

static void
test_best_effort (Fixture                     *f,
                  G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(AforkProcess) child = NULL;
  g_autofree char *open_outside = g_strconcat ("open:", f->outside_file, NULL);
  guint abi = afork_sandbox_get_kernel_landlock_abi ();
  /* The layers there are still stand. */
  const char *probes[] = {
    open_outside, abi > 0 ? "EACCES" : "ok",
    "socket-inet", "EAFNOSUPPORT",
    "ptrace", "EPERM",
    NULL
  };

  afork_sandbox_require_landlock_abi (sandbox, abi + 1);
  afork_sandbox_set_best_effort (sandbox, TRUE);
  tmpl = sandboxed_template (sandbox);
  child = afork_process_fork (tmpl);
  expect_probes (child, probes);
}

/* Without Landlock at all, a strict sandbox is refused. */
static void
test_no_landlock (G_GNUC_UNUSED Fixture       *f,
                  G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  if (afork_sandbox_get_kernel_landlock_abi () > 0)
    {
      g_test_skip ("This kernel has Landlock: see /sandbox/unenforceable");
      return;
    }

  tmpl = sandboxed_template (sandbox);
  connection = afork_test_run (tmpl, "sandbox_probe_run", &error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SANDBOX);
}

/* Commands after the sandbox: a module outside the allowed trees cannot
 * be loaded any more; one loaded before still works. */
static void
test_require_after (G_GNUC_UNUSED Fixture       *f,
                    G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  tmpl = sandboxed_template (sandbox);
  afork_process_require (tmpl, "afork-test-module");
  connection = afork_test_run (tmpl, "sandbox_probe_run", &error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
}

/* The built-in exec of a sandboxed process: refused unless execution is
 * allowed, and then only for programs in an allowed tree. */
static void
test_exec_command (G_GNUC_UNUSED Fixture       *f,
                   G_GNUC_UNUSED gconstpointer  data)
{
  const char *argv[] = { "/bin/true", NULL };

  for (guint allowed = 0; allowed < 2; allowed++)
    {
      g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
      g_autoptr(AforkProcess) tmpl = NULL;
      g_autoptr(AforkProcess) child = NULL;
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GError) error = NULL;

      if (allowed)
        {
          afork_sandbox_set_exec (sandbox, TRUE);
          afork_sandbox_allow_read (sandbox, "/usr");
          if (g_file_test ("/lib64", G_FILE_TEST_IS_DIR))
            afork_sandbox_allow_read (sandbox, "/lib64");
        }
      tmpl = sandboxed_template (sandbox);
      child = afork_process_fork (tmpl);
      connection = afork_process_exec (child, argv, NULL, NULL, &error);
      if (allowed)
        {
          g_assert_no_error (error);
          g_assert_nonnull (connection);
        }
      else
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
          g_assert_null (connection);
          g_clear_error (&error);
        }

      g_assert_true (afork_process_wait (child, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpint (afork_process_get_exit_status (child), ==, allowed ? 0 : 127);
    }
}

/* Landlock confines only the calling thread: a threaded process is
 * refused, or with best effort confined as far as it goes (its forks are
 * single-threaded and fully confined). */
static void
test_threads (Fixture                     *f,
              G_GNUC_UNUSED gconstpointer  data)
{
  g_autofree char *open_outside = g_strconcat ("open:", f->outside_file, NULL);
  const char *probes[] = { open_outside, "EACCES", "socket-inet", "EAFNOSUPPORT", NULL };

  for (guint best_effort = 0; best_effort < 2; best_effort++)
    {
      g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
      g_autoptr(AforkProcess) tmpl = afork_process_new (NULL);
      g_autoptr(AforkProcess) child = NULL;

      afork_sandbox_set_best_effort (sandbox, best_effort);
      afork_process_require (tmpl, MODULE);
      afork_process_call (tmpl, "sandbox_start_thread_call", NULL);
      afork_process_sandbox (tmpl, sandbox);
      child = afork_process_fork (tmpl);

      if (best_effort)
        expect_probes (child, probes);
      else
        {
          g_autoptr(GSocketConnection) connection = NULL;
          g_autoptr(GError) error = NULL;

          connection = afork_test_run (child, "sandbox_probe_run", &error);
          g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SANDBOX);
          g_assert_nonnull (strstr (error->message, "threads"));
        }
    }
}

/* The description is copied when queued, and its accessors. */
static void
test_description (void)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  guint64 memory = 0;
  guint cpu = 0;
  gboolean network = TRUE;

  g_assert_false (afork_sandbox_get_network (sandbox));
  g_assert_false (afork_sandbox_get_exec (sandbox));
  g_assert_false (afork_sandbox_get_best_effort (sandbox));
  g_assert_cmpuint (afork_sandbox_get_memory_limit (sandbox), ==, 0);
  g_assert_cmpuint (afork_sandbox_get_cpu_limit (sandbox), ==, 0);
  g_assert_cmpuint (afork_sandbox_get_landlock_abi (sandbox), ==, 0);

  afork_sandbox_set_memory_limit (sandbox, G_GUINT64_CONSTANT (1) << 40);
  afork_sandbox_set_cpu_limit (sandbox, 7);
  g_object_get (sandbox, "memory-limit", &memory, "cpu-limit", &cpu, "network", &network, NULL);
  g_assert_cmpuint (memory, ==, G_GUINT64_CONSTANT (1) << 40);
  g_assert_cmpuint (cpu, ==, 7);
  g_assert_false (network);
  g_object_set (sandbox, "exec", TRUE, "best-effort", TRUE, "landlock-abi", 3, NULL);
  g_assert_true (afork_sandbox_get_exec (sandbox));
  g_assert_true (afork_sandbox_get_best_effort (sandbox));
  g_assert_cmpuint (afork_sandbox_get_landlock_abi (sandbox), ==, 3);
}

/* A path that does not exist is a clear error. */
static void
test_missing_path (Fixture                     *f,
                   G_GNUC_UNUSED gconstpointer  data)
{
  g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
  g_autoptr(AforkProcess) tmpl = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename (f->outside, "no-such-dir", NULL);

  afork_sandbox_allow_read (sandbox, missing);
  tmpl = sandboxed_template (sandbox);
  connection = afork_test_run (tmpl, "sandbox_probe_run", &error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SANDBOX);
  g_assert_nonnull (strstr (error->message, missing));
}

#define ADD(path, func) \
  g_test_add ("/afork/sandbox/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

/* A test of the walls, which needs Landlock to build them. */
#define ADD_LANDLOCK(path, func) \
  G_STMT_START { \
    if (afork_sandbox_get_kernel_landlock_abi () > 0) \
      ADD (path, func); \
    else \
      g_test_add_data_func ("/afork/sandbox/" path, NULL, skip_without_landlock); \
  } G_STMT_END

int
main (int    argc,
      char **argv)
{
  afork_test_init (&argc, &argv);

  g_test_add_func ("/afork/sandbox/description", test_description);
  ADD_LANDLOCK ("files", test_files);
  ADD_LANDLOCK ("syscalls", test_syscalls);
  ADD_LANDLOCK ("allowed", test_allowed);
  ADD_LANDLOCK ("memory-limit", test_memory_limit);
  ADD_LANDLOCK ("cpu-limit", test_cpu_limit);
  ADD_LANDLOCK ("machinery", test_machinery);
  ADD_LANDLOCK ("spare-before-sandbox", test_spare_before_sandbox);
  ADD_LANDLOCK ("unsandboxed-sibling", test_unsandboxed_sibling);
  ADD ("unenforceable", test_unenforceable);
  ADD ("best-effort", test_best_effort);
  ADD ("no-landlock", test_no_landlock);
  ADD_LANDLOCK ("require-after", test_require_after);
  ADD_LANDLOCK ("exec-command", test_exec_command);
  ADD_LANDLOCK ("threads", test_threads);
  ADD_LANDLOCK ("missing-path", test_missing_path);

  return g_test_run ();
}
