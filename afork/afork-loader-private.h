/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a server offers a language loader, and what it asks of one.
 *
 * A name with a prefix ("python:pkg.module", "python:pkg.module.function")
 * is handed to the loader of that prefix, a plugin the server loads on
 * first use (a shared module found in the library's own directory, which
 * exports AFORK_LOADER_ENTRY). The server knows nothing of the language:
 * a second language is a second plugin.
 *
 * A name without a prefix is a C symbol, looked up in the modules the
 * server loaded and in the server program itself. */

#include <glib.h>

#include "afork-child.h"

G_BEGIN_DECLS

typedef struct _AforkLoader AforkLoader;

struct _AforkLoader
{
  /* "python" for names that start with "python:" */
  const char *prefix;

  /* Loads the module @name (the part after the prefix) in this process.
   * Called once per require. */
  gboolean  (*require)           (const char   *name,
                                  GError      **error);

  /* Resolves a function name (after the prefix) to a handle the loader
   * keeps alive for the life of the process. NULL with @error set when
   * the function does not exist (AFORK_ERROR_FUNCTION_NOT_FOUND). */
  gpointer  (*resolve)           (const char   *name,
                                  GError      **error);

  /* Enters a run function; may return, after which the process exits 0. */
  void      (*run)               (gpointer      handle,
                                  AforkChild   *child);

  /* Runs a call function (AforkCallFunc's contract). */
  gboolean  (*call)              (gpointer            handle,
                                  AforkChild         *child,
                                  const char * const *args,
                                  GError            **error);

  /* Runs a pool function (AforkPoolFunc's contract: @parameters is a
   * tuple; the result may be floating; NULL without error means "()"). */
  GVariant *(*pool_call)         (gpointer      handle,
                                  AforkChild   *child,
                                  GVariant     *parameters,
                                  GError      **error);

  /* Told around every fork() the server makes (spare, fork request, exec). */
  void      (*before_fork)       (void);
  void      (*after_fork_parent) (void);
  void      (*after_fork_child)  (void);
};

/* The symbol a loader plugin exports: const AforkLoader *afork_loader_get (void) */
#define AFORK_LOADER_ENTRY "afork_loader_get"
typedef const AforkLoader *(*AforkLoaderEntry) (void);

/* A resolved function: a C symbol (loader NULL), or a loader's handle. */
typedef struct
{
  const AforkLoader *loader;
  gpointer           symbol;
} AforkFunction;

/* Resolves @name, with or without a prefix, in the current server process.
 * Only valid inside a server (a template, or a process forked from one,
 * including run functions). */
gboolean  _afork_server_resolve_function (const char     *name,
                                          AforkFunction  *out,
                                          GError        **error);

/* Runs the hooks of every loaded loader around a fork() of the server. */
void      _afork_server_before_fork      (void);
void      _afork_server_after_fork       (pid_t           pid);

G_END_DECLS
