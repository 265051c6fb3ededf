/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Prints the descriptors it was started with, in order, separated by
 * spaces ("0 1 2\n"), leaving out the one it reads the list with.
 * Linked with the C library only. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

int
main (void)
{
  DIR *dir = opendir ("/proc/self/fd");
  struct dirent *entry;
  int fds[1024], n = 0;

  if (dir == NULL)
    return 1;
  while ((entry = readdir (dir)) != NULL && n < 1024)
    if (entry->d_name[0] != '.' && atoi (entry->d_name) != dirfd (dir))
      fds[n++] = atoi (entry->d_name);
  closedir (dir);

  /* The kernel lists them in order. */
  for (int i = 0; i < n; i++)
    printf ("%s%d", i > 0 ? " " : "", fds[i]);
  printf ("\n");

  return 0;
}
