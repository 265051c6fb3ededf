/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-private.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "afork-process-private.h"
#include "afork-sandbox.h"
#include "afork-wire-private.h"

/**
 * AforkSandbox:
 *
 * The walls of a process: what it may open, whether it may use the
 * network or execute programs, and how much memory and CPU time it may
 * take.
 *
 * A sandbox is a description, made in the parent and applied in a child
 * by [method@Afork.Process.sandbox], where it takes effect when the
 * child reaches that command, after the modules required before it are
 * loaded. It cannot be lifted: every later command, call and run
 * function of that process, and every process forked from it, is
 * confined. A template is the place for it: it loads its libraries and
 * data, then closes the doors, and every fork inherits the walls without
 * building them again.
 *
 * |[<!-- language="C" -->
 * g_autoptr(AforkSandbox) sandbox = afork_sandbox_new ();
 *
 * afork_sandbox_set_memory_limit (sandbox, 512 * 1024 * 1024);
 * afork_sandbox_set_cpu_limit (sandbox, 10);
 *
 * template = afork_process_new (&error);
 * afork_process_require (template, "thumbnail-worker");
 * afork_process_call (template, "thumbnail_worker_init", NULL);
 * afork_process_sandbox (template, sandbox);
 * // each afork_process_fork (template) is confined from its first instruction
 * ]|
 *
 * The layers, in the order they are applied:
 *
 * - resource limits: `RLIMIT_AS` (the memory limit) on the process itself
 *   and `RLIMIT_CPU` (the CPU limit) on every process forked from it and
 *   on the process itself when it enters a run function;
 * - `PR_SET_NO_NEW_PRIVS`: no set-user-ID program gains privileges;
 * - Landlock, with the file-system rights of the best ABI the kernel
 *   offers: with no [method@Afork.Sandbox.allow_read] nor
 *   [method@Afork.Sandbox.allow_write], nothing can be opened by path at
 *   all (descriptors received stay usable); TCP ports where the ABI has
 *   network rights; abstract unix sockets and signals scoped to the
 *   sandbox where the ABI scopes them;
 * - a seccomp filter, a deny-list whose every denial is an error number
 *   (`EPERM`, `EAFNOSUPPORT`), never a killed process: `ptrace`, mounts,
 *   namespaces, `bpf`, `perf_event_open`, keyrings, `personality`
 *   changes, terminal injection, sockets other than `AF_UNIX` unless the
 *   network is allowed, `execve` unless execution is allowed.
 *
 * When the kernel cannot enforce a layer (no Landlock, an older ABI than
 * [method@Afork.Sandbox.require_landlock_abi] asks for, no seccomp), the
 * command fails with %AFORK_ERROR_SANDBOX naming the layer, and
 * [method@Afork.Process.run_finish] reports it like any failed command.
 * With [method@Afork.Sandbox.set_best_effort] the process goes on with what
 * could be enforced, and names what is missing in a debug message.
 *
 * The guide “Sandboxing” says what each layer stops and what it does not.
 *
 * Since: 1.0
 */

struct _AforkSandbox
{
  GObject    parent_instance;

  GPtrArray *read_paths;    /* char *, absolute */
  GPtrArray *write_paths;   /* char *, absolute */
  gboolean   network;
  gboolean   exec;
  gboolean   best_effort;
  guint64    memory_limit;
  guint      cpu_limit;
  guint      landlock_abi;
};

G_DEFINE_FINAL_TYPE (AforkSandbox, afork_sandbox, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_NETWORK,
  PROP_EXEC,
  PROP_MEMORY_LIMIT,
  PROP_CPU_LIMIT,
  PROP_BEST_EFFORT,
  PROP_LANDLOCK_ABI,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
afork_sandbox_finalize (GObject *object)
{
  AforkSandbox *self = AFORK_SANDBOX (object);

  g_clear_pointer (&self->read_paths, g_ptr_array_unref);
  g_clear_pointer (&self->write_paths, g_ptr_array_unref);

  G_OBJECT_CLASS (afork_sandbox_parent_class)->finalize (object);
}

static void
afork_sandbox_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  AforkSandbox *self = AFORK_SANDBOX (object);

  switch (prop_id)
    {
    case PROP_NETWORK:
      g_value_set_boolean (value, self->network);
      break;
    case PROP_EXEC:
      g_value_set_boolean (value, self->exec);
      break;
    case PROP_MEMORY_LIMIT:
      g_value_set_uint64 (value, self->memory_limit);
      break;
    case PROP_CPU_LIMIT:
      g_value_set_uint (value, self->cpu_limit);
      break;
    case PROP_BEST_EFFORT:
      g_value_set_boolean (value, self->best_effort);
      break;
    case PROP_LANDLOCK_ABI:
      g_value_set_uint (value, self->landlock_abi);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
afork_sandbox_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  AforkSandbox *self = AFORK_SANDBOX (object);

  switch (prop_id)
    {
    case PROP_NETWORK:
      afork_sandbox_set_network (self, g_value_get_boolean (value));
      break;
    case PROP_EXEC:
      afork_sandbox_set_exec (self, g_value_get_boolean (value));
      break;
    case PROP_MEMORY_LIMIT:
      afork_sandbox_set_memory_limit (self, g_value_get_uint64 (value));
      break;
    case PROP_CPU_LIMIT:
      afork_sandbox_set_cpu_limit (self, g_value_get_uint (value));
      break;
    case PROP_BEST_EFFORT:
      afork_sandbox_set_best_effort (self, g_value_get_boolean (value));
      break;
    case PROP_LANDLOCK_ABI:
      afork_sandbox_require_landlock_abi (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
afork_sandbox_class_init (AforkSandboxClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = afork_sandbox_finalize;
  object_class->get_property = afork_sandbox_get_property;
  object_class->set_property = afork_sandbox_set_property;

  /**
   * AforkSandbox:network:
   *
   * Whether the process may use the network: sockets of other families
   * than `AF_UNIX`, and TCP ports.
   *
   * Since: 1.0
   */
  properties[PROP_NETWORK] =
    g_param_spec_boolean ("network", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AforkSandbox:exec:
   *
   * Whether the process may execute programs (`execve`). A program must
   * also lie in a tree allowed with [method@Afork.Sandbox.allow_read].
   *
   * Since: 1.0
   */
  properties[PROP_EXEC] =
    g_param_spec_boolean ("exec", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AforkSandbox:memory-limit:
   *
   * The most address space the process may map (`RLIMIT_AS`), in bytes,
   * counting what it maps already; 0 for no limit.
   *
   * Since: 1.0
   */
  properties[PROP_MEMORY_LIMIT] =
    g_param_spec_uint64 ("memory-limit", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AforkSandbox:cpu-limit:
   *
   * The CPU time, in seconds, each process forked from the sandboxed one
   * (and the sandboxed process itself once it enters a run function) may
   * use before it is killed (`RLIMIT_CPU`); 0 for no limit.
   *
   * Since: 1.0
   */
  properties[PROP_CPU_LIMIT] =
    g_param_spec_uint ("cpu-limit", NULL, NULL, 0, G_MAXUINT32, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AforkSandbox:best-effort:
   *
   * Whether the process goes on with the layers the kernel can enforce
   * when it cannot enforce them all, rather than failing with
   * %AFORK_ERROR_SANDBOX.
   *
   * Since: 1.0
   */
  properties[PROP_BEST_EFFORT] =
    g_param_spec_boolean ("best-effort", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * AforkSandbox:landlock-abi:
   *
   * The lowest Landlock ABI version the sandbox accepts; 0 (the default)
   * accepts any version the kernel offers, 1 and up.
   *
   * Since: 1.0
   */
  properties[PROP_LANDLOCK_ABI] =
    g_param_spec_uint ("landlock-abi", NULL, NULL, 0, G_MAXUINT32, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
afork_sandbox_init (AforkSandbox *self)
{
  self->read_paths = g_ptr_array_new_with_free_func (g_free);
  self->write_paths = g_ptr_array_new_with_free_func (g_free);
}

/**
 * afork_sandbox_new:
 *
 * Creates a sandbox description with the tightest walls: no path may be
 * opened, no network, no program executed, no resource limit.
 *
 * Returns: (transfer full): a new #AforkSandbox
 *
 * Since: 1.0
 */
AforkSandbox *
afork_sandbox_new (void)
{
  return g_object_new (AFORK_TYPE_SANDBOX, NULL);
}

static void
add_path (GPtrArray  *paths,
          const char *path)
{
  char *absolute = g_canonicalize_filename (path, NULL);

  for (guint i = 0; i < paths->len; i++)
    if (g_str_equal (paths->pdata[i], absolute))
      {
        g_free (absolute);
        return;
      }

  g_ptr_array_add (paths, absolute);
}

/**
 * afork_sandbox_allow_read:
 * @self: an #AforkSandbox
 * @path: (type filename): a file or directory
 *
 * Lets the process read @path and, if it is a directory, list and read
 * everything below it, and execute the programs there (when
 * [property@Afork.Sandbox:exec] allows execution at all). Mapping a file
 * as code needs nothing more than reading it.
 *
 * A relative @path is taken from the current directory of the caller.
 * The path must exist when the process applies the sandbox; otherwise
 * the command fails with %AFORK_ERROR_SANDBOX.
 *
 * Since: 1.0
 */
void
afork_sandbox_allow_read (AforkSandbox *self,
                          const char   *path)
{
  g_return_if_fail (AFORK_IS_SANDBOX (self));
  g_return_if_fail (path != NULL && path[0] != '\0');

  add_path (self->read_paths, path);
}

/**
 * afork_sandbox_allow_write:
 * @self: an #AforkSandbox
 * @path: (type filename): a file or directory
 *
 * Lets the process read, write, create, rename and remove files and
 * directories at and below @path, as well as what
 * [method@Afork.Sandbox.allow_read] allows. Device nodes cannot be
 * created.
 *
 * A relative @path is taken from the current directory of the caller.
 * The path must exist when the process applies the sandbox.
 *
 * Since: 1.0
 */
void
afork_sandbox_allow_write (AforkSandbox *self,
                           const char   *path)
{
  g_return_if_fail (AFORK_IS_SANDBOX (self));
  g_return_if_fail (path != NULL && path[0] != '\0');

  add_path (self->write_paths, path);
}

/**
 * afork_sandbox_set_network:
 * @self: an #AforkSandbox
 * @allowed: whether the network may be used
 *
 * Sets [property@Afork.Sandbox:network]. By default it is not: creating
 * a socket of any family but `AF_UNIX` fails with `EAFNOSUPPORT`, and,
 * where Landlock has network rights, binding or connecting a TCP socket
 * received from elsewhere fails too.
 *
 * Since: 1.0
 */
void
afork_sandbox_set_network (AforkSandbox *self,
                           gboolean      allowed)
{
  g_return_if_fail (AFORK_IS_SANDBOX (self));

  allowed = !!allowed;
  if (self->network == allowed)
    return;
  self->network = allowed;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NETWORK]);
}

/**
 * afork_sandbox_get_network:
 * @self: an #AforkSandbox
 *
 * Gets [property@Afork.Sandbox:network].
 *
 * Returns: whether the network may be used
 *
 * Since: 1.0
 */
gboolean
afork_sandbox_get_network (AforkSandbox *self)
{
  g_return_val_if_fail (AFORK_IS_SANDBOX (self), FALSE);

  return self->network;
}

/**
 * afork_sandbox_set_exec:
 * @self: an #AforkSandbox
 * @allowed: whether programs may be executed
 *
 * Sets [property@Afork.Sandbox:exec]. By default `execve` and `execveat`
 * fail with `EPERM`, and so does [method@Afork.Process.exec_async] in a
 * sandboxed process.
 *
 * Since: 1.0
 */
void
afork_sandbox_set_exec (AforkSandbox *self,
                        gboolean      allowed)
{
  g_return_if_fail (AFORK_IS_SANDBOX (self));

  allowed = !!allowed;
  if (self->exec == allowed)
    return;
  self->exec = allowed;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_EXEC]);
}

/**
 * afork_sandbox_get_exec:
 * @self: an #AforkSandbox
 *
 * Gets [property@Afork.Sandbox:exec].
 *
 * Returns: whether programs may be executed
 *
 * Since: 1.0
 */
gboolean
afork_sandbox_get_exec (AforkSandbox *self)
{
  g_return_val_if_fail (AFORK_IS_SANDBOX (self), FALSE);

  return self->exec;
}

/**
 * afork_sandbox_set_memory_limit:
 * @self: an #AforkSandbox
 * @bytes: the limit, or 0 for none
 *
 * Sets [property@Afork.Sandbox:memory-limit]: an allocation past it fails
 * (`malloc` returns %NULL, `mmap` fails with `ENOMEM`).
 *
 * Since: 1.0
 */
void
afork_sandbox_set_memory_limit (AforkSandbox *self,
                                guint64       bytes)
{
  g_return_if_fail (AFORK_IS_SANDBOX (self));

  if (self->memory_limit == bytes)
    return;
  self->memory_limit = bytes;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MEMORY_LIMIT]);
}

/**
 * afork_sandbox_get_memory_limit:
 * @self: an #AforkSandbox
 *
 * Gets [property@Afork.Sandbox:memory-limit].
 *
 * Returns: the limit in bytes, or 0
 *
 * Since: 1.0
 */
guint64
afork_sandbox_get_memory_limit (AforkSandbox *self)
{
  g_return_val_if_fail (AFORK_IS_SANDBOX (self), 0);

  return self->memory_limit;
}

/**
 * afork_sandbox_set_cpu_limit:
 * @self: an #AforkSandbox
 * @seconds: the limit, or 0 for none
 *
 * Sets [property@Afork.Sandbox:cpu-limit]. A process past it receives
 * `SIGXCPU`, then `SIGKILL` a second later; its exit is reported like any
 * other (see [method@Afork.Process.wait_async]).
 *
 * The template itself, which only waits and forks, is not limited: its
 * CPU time adds up over its whole life. Each process forked from it starts
 * with a count of zero.
 *
 * Since: 1.0
 */
void
afork_sandbox_set_cpu_limit (AforkSandbox *self,
                             guint         seconds)
{
  g_return_if_fail (AFORK_IS_SANDBOX (self));

  if (self->cpu_limit == seconds)
    return;
  self->cpu_limit = seconds;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CPU_LIMIT]);
}

/**
 * afork_sandbox_get_cpu_limit:
 * @self: an #AforkSandbox
 *
 * Gets [property@Afork.Sandbox:cpu-limit].
 *
 * Returns: the limit in seconds, or 0
 *
 * Since: 1.0
 */
guint
afork_sandbox_get_cpu_limit (AforkSandbox *self)
{
  g_return_val_if_fail (AFORK_IS_SANDBOX (self), 0);

  return self->cpu_limit;
}

/**
 * afork_sandbox_set_best_effort:
 * @self: an #AforkSandbox
 * @best_effort: whether to go on with what the kernel can enforce
 *
 * Sets [property@Afork.Sandbox:best-effort].
 *
 * Since: 1.0
 */
void
afork_sandbox_set_best_effort (AforkSandbox *self,
                               gboolean      best_effort)
{
  g_return_if_fail (AFORK_IS_SANDBOX (self));

  best_effort = !!best_effort;
  if (self->best_effort == best_effort)
    return;
  self->best_effort = best_effort;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BEST_EFFORT]);
}

/**
 * afork_sandbox_get_best_effort:
 * @self: an #AforkSandbox
 *
 * Gets [property@Afork.Sandbox:best-effort].
 *
 * Returns: whether the sandbox is applied on a best-effort basis
 *
 * Since: 1.0
 */
gboolean
afork_sandbox_get_best_effort (AforkSandbox *self)
{
  g_return_val_if_fail (AFORK_IS_SANDBOX (self), FALSE);

  return self->best_effort;
}

/**
 * afork_sandbox_require_landlock_abi:
 * @self: an #AforkSandbox
 * @abi: the lowest Landlock ABI version to accept, or 0 for any
 *
 * Sets [property@Afork.Sandbox:landlock-abi]: a kernel that offers an
 * older Landlock ABI than @abi counts as one that cannot enforce the
 * Landlock layer. This is how to insist on a later ABI's rights (3:
 * truncation, 4: TCP ports, 5: device ioctls, 6: abstract unix sockets
 * and signals scoped to the sandbox), which are otherwise used only where
 * the kernel has them.
 *
 * Since: 1.0
 */
void
afork_sandbox_require_landlock_abi (AforkSandbox *self,
                                    guint         abi)
{
  g_return_if_fail (AFORK_IS_SANDBOX (self));

  if (self->landlock_abi == abi)
    return;
  self->landlock_abi = abi;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LANDLOCK_ABI]);
}

/**
 * afork_sandbox_get_landlock_abi:
 * @self: an #AforkSandbox
 *
 * Gets [property@Afork.Sandbox:landlock-abi].
 *
 * Returns: the lowest Landlock ABI version accepted, or 0 for any
 *
 * Since: 1.0
 */
guint
afork_sandbox_get_landlock_abi (AforkSandbox *self)
{
  g_return_val_if_fail (AFORK_IS_SANDBOX (self), 0);

  return self->landlock_abi;
}

/**
 * afork_sandbox_get_kernel_landlock_abi:
 *
 * Asks the running kernel which Landlock ABI version it offers.
 *
 * Returns: the version, or 0 if the kernel has no Landlock or it is
 *   disabled
 *
 * Since: 1.0
 */
guint
afork_sandbox_get_kernel_landlock_abi (void)
{
#ifdef SYS_landlock_create_ruleset
  /* LANDLOCK_CREATE_RULESET_VERSION */
  long abi = syscall (SYS_landlock_create_ruleset, NULL, (size_t) 0, (guint32) 1);

  return abi > 0 ? (guint) abi : 0;
#else
  return 0;
#endif
}

static void
put_paths (GArray    *out,
           GPtrArray *paths,
           guint32    access)
{
  for (guint i = 0; i < paths->len; i++)
    {
      const char *path = paths->pdata[i];
      AforkWireSandboxPath p = { access, { (const guint8 *) path, (guint32) strlen (path) } };

      g_array_append_val (out, p);
    }
}

/**
 * afork_process_sandbox:
 * @self: an #AforkProcess
 * @sandbox: the walls to build
 *
 * Confines the process as @sandbox describes, when it reaches this
 * command: after the modules required and the functions called before it,
 * and for good. Every later command, call and run function of the
 * process, and every process forked from it, is confined; the parent and
 * other processes are not. The description is copied: changing @sandbox
 * later changes nothing for @self.
 *
 * If the kernel cannot enforce a layer @sandbox asks for, and
 * [property@Afork.Sandbox:best-effort] is not set, the process skips all
 * further work and [method@Afork.Process.run_finish] fails with
 * %AFORK_ERROR_SANDBOX, as do the runs of processes forked from it.
 *
 * Returns: (transfer none): @self, to chain calls
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_sandbox (AforkProcess *self,
                       AforkSandbox *sandbox)
{
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  g_autoptr(GArray) paths = g_array_new (FALSE, FALSE, sizeof (AforkWireSandboxPath));
  AforkWireSandbox wire = { 0 };

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (AFORK_IS_SANDBOX (sandbox), self);

  wire.flags = (sandbox->network ? AFORK_WIRE_SANDBOX_NETWORK : 0) |
               (sandbox->exec ? AFORK_WIRE_SANDBOX_EXEC : 0) |
               (sandbox->best_effort ? AFORK_WIRE_SANDBOX_BEST_EFFORT : 0);
  wire.memory_limit = sandbox->memory_limit;
  wire.cpu_limit = sandbox->cpu_limit;
  wire.landlock_abi = sandbox->landlock_abi;
  put_paths (paths, sandbox->read_paths, AFORK_WIRE_SANDBOX_READ);
  put_paths (paths, sandbox->write_paths, AFORK_WIRE_SANDBOX_WRITE);
  wire.paths = paths;

  _afork_wire_put_sandbox (payload, &wire);
  _afork_process_queue_frame (self, AFORK_WIRE_SANDBOX, payload->data, payload->len);

  return self;
}
