/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How many threads this process runs, for the server and its loaders: a
 * template must have one only, to fork safely and to be confined whole. */
#pragma once

#include <dirent.h>

#include <glib.h>

G_BEGIN_DECLS

/* From /proc/self/task; 1 when that cannot be read. */
static inline guint
_afork_count_threads (void)
{
  DIR *dir = opendir ("/proc/self/task");
  struct dirent *entry;
  guint n = 0;

  if (dir == NULL)
    return 1;
  while ((entry = readdir (dir)) != NULL)
    if (entry->d_name[0] != '.')
      n++;
  closedir (dir);

  return MAX (n, 1);
}

G_END_DECLS
