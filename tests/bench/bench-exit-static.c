/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The smallest program a spawn can start: statically linked, so that no
 * dynamic linking is measured, and exits at once. */
int main (void);

int
main (void)
{
  return 0;
}
