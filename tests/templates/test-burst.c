/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A burst of afork_process_new () calls, more than the default template's
 * socket holds, from a loop that does not let anything run meanwhile: the
 * template is busy, not dead, so one template serves them all, and every
 * process is made. */
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "afork-test-common.h"

/* More requests than a unix socket's buffer holds (a few hundred). */
#define BURST 2000

/* The number of default templates: children of this program titled
 * "afork-server OWNER template", OWNER being this program. (A process the
 * template has just forked has that title too for a moment, but it is
 * the template's child.) */
static guint
count_default_templates (void)
{
  g_autofree char *wanted = g_strdup_printf ("afork-server %d template", (int) getpid ());
  DIR *dir = opendir ("/proc");
  struct dirent *entry;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((entry = readdir (dir)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/%s/cmdline", entry->d_name);
      g_autofree char *contents = NULL;
      gsize len;

      if (g_ascii_isdigit (entry->d_name[0]) &&
          g_file_get_contents (path, &contents, &len, NULL) &&
          len > 0 && strcmp (contents, wanted) == 0 &&
          afork_test_proc_parent ((GPid) g_ascii_strtoll (entry->d_name, NULL, 10)) == getpid ())
        n++;
    }
  closedir (dir);

  return n;
}

typedef struct
{
  guint    pending;
  gboolean done;
} Runs;

static void
run_done_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Runs *runs = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = NULL;

  connection = afork_process_run_finish (AFORK_PROCESS (object), result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (connection);
  runs->done = --runs->pending == 0;
}

static void
test_burst_one_template (void)
{
  g_autoptr(GPtrArray) processes = g_ptr_array_new_with_free_func (g_object_unref);
  Runs runs = { BURST, FALSE };

  for (guint i = 0; i < BURST; i++)
    {
      g_autoptr(GError) error = NULL;
      AforkProcess *process = afork_process_new (&error);

      g_assert_no_error (error);
      g_ptr_array_add (processes, process);
    }

  g_assert_cmpuint (count_default_templates (), ==, 1);

  /* Every request reached the template: every process runs. */
  for (guint i = 0; i < BURST; i++)
    afork_process_run_async (processes->pdata[i], "_exit", NULL, run_done_cb, &runs);
  afork_test_iterate_until (NULL, &runs.done, "every process of the burst runs");
  g_assert_cmpuint (count_default_templates (), ==, 1);
}

int
main (int    argc,
      char **argv)
{
  afork_test_init (&argc, &argv);

  g_test_add_func ("/burst/one-template", test_burst_one_template);

  return g_test_run ();
}
