/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Sharing the template's code pages with its children.
 *
 * fork () copies the page-table entries of a private mapping only when
 * the mapping has anonymous pages of its own. A library's code has none,
 * so a child starts with none of its code mapped, although the template
 * has the same pages mapped, and takes a fault for every stretch of code
 * it runs (some 35 faults a fresh Python worker, each costly in a
 * virtual machine). Writing one byte of each code mapping, its own value,
 * through /proc/self/mem (as a debugger sets a breakpoint) gives the
 * mapping one anonymous page; from then on fork () copies the entries the
 * template has, and a child runs the code the template ran without a
 * fault. The mapping stays a mapping of its file, read-only and
 * executable; it costs one page per library.
 *
 * Done before a fork when the template may have mapped code since the
 * last time (a require, a call, the first fork), for mappings not done
 * before. Nothing is done where /proc/self/mem cannot be written (no
 * /proc, a kernel that refuses it): children then fault as before. */

#include "afork-server-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Mappings done, as "start-end inode" (a library mapped again elsewhere,
 * or another one in its place, is done again). */
static GHashTable *done;
static gboolean unavailable;

/* Gives the code mapping of @line (a line of /proc/self/maps), if it is
 * one, its anonymous page. */
static void
share_mapping (int         mem,
               const char *line)
{
  unsigned long start, end, inode;
  char perms[5];
  char *key;
  int path;
  unsigned char byte;

  if (sscanf (line, "%lx-%lx %4s %*s %*s %lu %n", &start, &end, perms, &inode, &path) < 4)
    return;
  /* Private, executable, of a file; not [vdso] and the like. */
  if (strcmp (perms, "r-xp") != 0 || inode == 0 || line[path] != '/')
    return;

  key = g_strdup_printf ("%lx-%lx %lu", start, end, inode);
  if (g_hash_table_contains (done, key))
    {
      g_free (key);
      return;
    }
  g_hash_table_add (done, key);

  byte = *(const volatile unsigned char *) start;
  if (pwrite (mem, &byte, 1, (off_t) start) != 1)
    g_debug ("Could not share the code at %lx with children: %s", start, g_strerror (errno));
}

void
_afork_server_share_text (AforkServer *server)
{
  char line[4096];
  FILE *maps;
  int mem;

  if (server->text_generation == server->generation + 1 || unavailable)
    return;
  /* + 1: the first fork of a server that had no command does it too. */
  server->text_generation = server->generation + 1;

  mem = open ("/proc/self/mem", O_RDWR | O_CLOEXEC);
  maps = fopen ("/proc/self/maps", "re");
  if (mem < 0 || maps == NULL)
    {
      unavailable = TRUE;
      if (mem >= 0)
        close (mem);
      if (maps != NULL)
        fclose (maps);
      return;
    }

  if (done == NULL)
    done = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  while (fgets (line, sizeof line, maps) != NULL)
    share_mapping (mem, line);

  fclose (maps);
  close (mem);
}
