/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The exec path never forks the calling program: afork-exec-helper starts
 * processes with afork_process_new_exec () and afork_process_new () under
 * `strace -f`, and the trace must show that neither the helper nor any of
 * its threads made a fork () or a clone () without CLONE_VM, and that the
 * servers were started with a vfork-style clone (posix_spawn). The
 * servers themselves fork their children: they are other processes. */
#include <afork/afork.h>

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  int    pid;      /* the caller */
  char  *name;     /* clone, clone3, fork or vfork */
  char  *flags;    /* CLONE_VM|CLONE_VFORK|..., or NULL */
  int    ret;      /* the new task's id, or -1 */
  char  *text;     /* the whole call, for messages */
} CloneEvent;

static void
clone_event_free (gpointer data)
{
  CloneEvent *event = data;

  g_free (event->name);
  g_free (event->flags);
  g_free (event->text);
  g_free (event);
}

static gboolean
has_flag (const CloneEvent *event,
          const char       *flag)
{
  g_auto(GStrv) flags = NULL;

  if (event->flags == NULL)
    return FALSE;

  flags = g_strsplit (event->flags, "|", -1);

  return g_strv_contains ((const char * const *) flags, flag);
}

static void
add_event (GPtrArray  *events,
           int         pid,
           const char *name,
           const char *text)
{
  g_autoptr(GRegex) flags_re = g_regex_new ("flags=([A-Z0-9_|]+)", 0, 0, NULL);
  /* strace pads the result: "...)        = 1234" */
  g_autoptr(GRegex) result_re = g_regex_new ("\\)\\s*=\\s*(-?[0-9]+)[^)]*$", 0, 0, NULL);
  g_autoptr(GMatchInfo) match = NULL;
  g_autoptr(GMatchInfo) result_match = NULL;
  CloneEvent *event = g_new0 (CloneEvent, 1);

  event->pid = pid;
  event->name = g_strdup (name);
  event->text = g_strdup (text);
  event->ret = -1;
  if (g_regex_match (flags_re, text, 0, &match))
    event->flags = g_match_info_fetch (match, 1);
  if (g_regex_match (result_re, text, 0, &result_match))
    {
      g_autofree char *result = g_match_info_fetch (result_match, 1);

      event->ret = (int) g_ascii_strtoll (result, NULL, 10);
    }
  if (event->ret == 0)
    event->ret = -1;

  g_ptr_array_add (events, event);
}

/* Collects every clone, clone3, fork and vfork of the trace, joining
 * calls strace split into "<unfinished ...>" and "<... resumed>". */
static GPtrArray *
parse_trace (const char *trace,
             int        *first_pid,
             char      **first_line)
{
  g_autoptr(GRegex) line_re = g_regex_new ("^([0-9]+)\\s+(.*)$", 0, 0, NULL);
  g_autoptr(GRegex) call_re = g_regex_new ("^(clone3|clone|fork|vfork)\\(", 0, 0, NULL);
  g_autoptr(GRegex) resumed_re = g_regex_new ("^<\\.\\.\\. (clone3|clone|fork|vfork) resumed>(.*)$", 0, 0, NULL);
  g_autoptr(GHashTable) pending = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  g_auto(GStrv) lines = g_strsplit (trace, "\n", -1);
  GPtrArray *events = g_ptr_array_new_with_free_func (clone_event_free);

  *first_pid = -1;
  *first_line = NULL;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(GMatchInfo) line_match = NULL;
      g_autoptr(GMatchInfo) call_match = NULL;
      g_autoptr(GMatchInfo) resumed_match = NULL;
      g_autofree char *pid_str = NULL;
      g_autofree char *rest = NULL;
      int pid;

      if (!g_regex_match (line_re, lines[i], 0, &line_match))
        continue;

      pid_str = g_match_info_fetch (line_match, 1);
      rest = g_match_info_fetch (line_match, 2);
      pid = (int) g_ascii_strtoll (pid_str, NULL, 10);

      if (*first_pid < 0)
        {
          *first_pid = pid;
          *first_line = g_strdup (rest);
        }

      if (g_regex_match (resumed_re, rest, 0, &resumed_match))
        {
          g_autofree char *name = g_match_info_fetch (resumed_match, 1);
          g_autofree char *tail = g_match_info_fetch (resumed_match, 2);
          const char *start = g_hash_table_lookup (pending, GINT_TO_POINTER (pid));

          if (start != NULL)
            {
              g_autofree char *text = g_strconcat (start, tail, NULL);

              add_event (events, pid, name, text);
              g_hash_table_remove (pending, GINT_TO_POINTER (pid));
            }
          else
            add_event (events, pid, name, rest);
        }
      else if (g_regex_match (call_re, rest, 0, &call_match))
        {
          g_autofree char *name = g_match_info_fetch (call_match, 1);
          char *unfinished = strstr (rest, " <unfinished ...>");

          if (unfinished != NULL)
            {
              *unfinished = '\0';
              g_hash_table_insert (pending, GINT_TO_POINTER (pid), g_strdup (rest));
            }
          else
            add_event (events, pid, name, rest);
        }
    }

  /* Calls that never finished (the caller exited meanwhile) still count. */
  {
    GHashTableIter iter;
    gpointer key, value;

    g_hash_table_iter_init (&iter, pending);
    while (g_hash_table_iter_next (&iter, &key, &value))
      {
        g_autofree char *name = g_strndup (value, strcspn (value, "("));

        add_event (events, GPOINTER_TO_INT (key), name, value);
      }
  }

  return events;
}

static void
test_exec_path_no_fork (void)
{
  g_autofree char *strace = g_find_program_in_path ("strace");
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *trace_path = NULL;
  g_autofree char *trace = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *first_line = NULL;
  g_autofree char *exec_prefix = NULL;
  g_autoptr(GSubprocess) subprocess = NULL;
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GHashTable) helper = g_hash_table_new (NULL, NULL);
  guint n_vfork = 0, n_outside_forks = 0;
  int helper_pid;
  gboolean grew;

  if (strace == NULL)
    {
      g_test_skip ("strace is not installed");
      return;
    }

  dir = g_dir_make_tmp ("afork-trace-XXXXXX", &error);
  g_assert_no_error (error);
  trace_path = g_build_filename (dir, "trace", NULL);

  subprocess = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                 &error,
                                 strace, "-f", "-o", trace_path, "-e", "trace=process",
                                 AFORK_EXEC_HELPER, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (subprocess, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_test_message ("strace stderr: %s", err);

  if (g_subprocess_get_exit_status (subprocess) != 0 &&
      strstr (err, "ptrace") != NULL && strstr (err, "Operation not permitted") != NULL)
    {
      g_test_skip ("strace is not permitted to trace here");
      g_remove (trace_path);
      g_rmdir (dir);
      return;
    }

  g_assert_true (g_subprocess_get_if_exited (subprocess));
  g_assert_cmpint (g_subprocess_get_exit_status (subprocess), ==, 0);
  g_assert_cmpstr (out, ==, "ok\n");

  g_file_get_contents (trace_path, &trace, NULL, &error);
  g_assert_no_error (error);
  g_remove (trace_path);
  g_rmdir (dir);

  events = parse_trace (trace, &helper_pid, &first_line);

  /* The first traced task is the helper itself, as it starts. */
  exec_prefix = g_strdup_printf ("execve(\"%s\"", AFORK_EXEC_HELPER);
  g_assert_nonnull (first_line);
  g_assert_true (g_str_has_prefix (first_line, exec_prefix));
  g_hash_table_add (helper, GINT_TO_POINTER (helper_pid));

  /* Its threads, and theirs, whatever order strace logged them in. */
  do
    {
      grew = FALSE;
      for (guint i = 0; i < events->len; i++)
        {
          CloneEvent *event = events->pdata[i];

          if (event->ret > 0 &&
              g_hash_table_contains (helper, GINT_TO_POINTER (event->pid)) &&
              has_flag (event, "CLONE_THREAD") &&
              !g_hash_table_contains (helper, GINT_TO_POINTER (event->ret)))
            {
              g_hash_table_add (helper, GINT_TO_POINTER (event->ret));
              grew = TRUE;
            }
        }
    }
  while (grew);

  /* The helper made a thread of its own, GLib more. */
  g_assert_cmpuint (g_hash_table_size (helper), >=, 2);

  for (guint i = 0; i < events->len; i++)
    {
      CloneEvent *event = events->pdata[i];
      gboolean forks = g_str_equal (event->name, "fork") ||
                       (!g_str_equal (event->name, "vfork") && !has_flag (event, "CLONE_VM"));

      if (!g_hash_table_contains (helper, GINT_TO_POINTER (event->pid)))
        {
          if (forks)
            n_outside_forks++;
          continue;
        }

      if (forks)
        g_error ("task %d of the calling program forked: %s", event->pid, event->text);

      if (g_str_equal (event->name, "vfork") || has_flag (event, "CLONE_VFORK"))
        {
          g_test_message ("spawn by task %d: %s", event->pid, event->text);
          g_assert_cmpint (event->ret, >, 0);
          n_vfork++;
        }
    }

  g_test_message ("%u tasks in the calling program, %u vfork-style clones, "
                  "%u forks by the servers", g_hash_table_size (helper), n_vfork,
                  n_outside_forks);
  g_assert_cmpuint (n_vfork, >=, 1);
  /* The default template forked the second process: the trace did see
   * plain forks, just not in the calling program. */
  g_assert_cmpuint (n_outside_forks, >=, 1);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/afork/process/new-exec/no-fork", test_exec_path_no_fork);

  return g_test_run ();
}
