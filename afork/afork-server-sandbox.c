/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Applying a sandbox in a server (the `s` command): resource limits,
 * PR_SET_NO_NEW_PRIVS, Landlock, then a seccomp filter. Every layer is
 * inherited by fork(), so a template builds the walls once for all the
 * processes forked from it. See docs/sandboxing.md. */
#include "afork-server-sandbox-private.h"
#include "afork-threads-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef HAVE_LIBSECCOMP
# include <sched.h>
# include <sys/ioctl.h>
# include <sys/personality.h>
# include <linux/filter.h>
# include <linux/seccomp.h>
# include <seccomp.h>
# include <sys/wait.h>
#endif

/* Landlock, from the kernel's UAPI (include/uapi/linux/landlock.h), kept
 * here because the C library's headers may be older than the kernel. The
 * system calls have the same numbers on every architecture. */
#ifndef __NR_landlock_create_ruleset
# define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
# define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
# define __NR_landlock_restrict_self 446
#endif

#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH      1
#define LL_RULE_NET_PORT          2

typedef struct
{
  guint64 handled_access_fs;
  guint64 handled_access_net;   /* ABI 4 */
  guint64 scoped;               /* ABI 6 */
} LlRulesetAttr;

typedef struct __attribute__((packed))
{
  guint64 allowed_access;
  gint32  parent_fd;
} LlPathBeneathAttr;

#define LL_FS_EXECUTE     (1ull << 0)
#define LL_FS_WRITE_FILE  (1ull << 1)
#define LL_FS_READ_FILE   (1ull << 2)
#define LL_FS_READ_DIR    (1ull << 3)
#define LL_FS_REMOVE_DIR  (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR   (1ull << 6)
#define LL_FS_MAKE_DIR    (1ull << 7)
#define LL_FS_MAKE_REG    (1ull << 8)
#define LL_FS_MAKE_SOCK   (1ull << 9)
#define LL_FS_MAKE_FIFO   (1ull << 10)
#define LL_FS_MAKE_BLOCK  (1ull << 11)
#define LL_FS_MAKE_SYM    (1ull << 12)
#define LL_FS_REFER       (1ull << 13)   /* ABI 2 */
#define LL_FS_TRUNCATE    (1ull << 14)   /* ABI 3 */
#define LL_FS_IOCTL_DEV   (1ull << 15)   /* ABI 5 */

#define LL_NET_BIND_TCP    (1ull << 0)   /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)   /* ABI 4 */

#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0)   /* ABI 6 */
#define LL_SCOPE_SIGNAL               (1ull << 1)   /* ABI 6 */

/* What allow_read and allow_write grant, before masking with what the
 * kernel's ABI knows. Execution of a program still needs the exec flag
 * (seccomp); mapping a file as code needs only reading it. */
#define LL_ACCESS_READ  (LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR)
#define LL_ACCESS_WRITE (LL_ACCESS_READ | LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | \
                         LL_FS_REMOVE_FILE | LL_FS_MAKE_DIR | LL_FS_MAKE_REG | \
                         LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO | LL_FS_MAKE_SYM | \
                         LL_FS_REFER | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)
/* The rights that make sense on a file that is not a directory. */
#define LL_ACCESS_FILE  (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | \
                         LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

/* The newest ABI this file knows the rights of. */
#define LL_ABI_KNOWN 7

/* The file-system rights an ABI handles: everything it can deny. */
static guint64
ll_fs_rights (guint abi)
{
  guint64 rights = (LL_FS_MAKE_SYM << 1) - 1;   /* ABI 1 */

  if (abi >= 2)
    rights |= LL_FS_REFER;
  if (abi >= 3)
    rights |= LL_FS_TRUNCATE;
  if (abi >= 5)
    rights |= LL_FS_IOCTL_DEV;

  return rights;
}

static guint
landlock_abi (void)
{
  long abi = syscall (__NR_landlock_create_ruleset, NULL, (size_t) 0,
                      (guint32) LL_CREATE_RULESET_VERSION);

  return abi > 0 ? (guint) abi : 0;
}

/* The layers the kernel cannot give, named for the error message or the
 * debug message of a best-effort sandbox. */
typedef struct
{
  GPtrArray *missing;    /* char * */
  GPtrArray *weaker;     /* char *: later ABIs' refinements, not required */
} Shortfall;

static void
shortfall_add (GPtrArray  *list,
               const char *format,
               ...) G_GNUC_PRINTF (2, 3);

static void
shortfall_add (GPtrArray  *list,
               const char *format,
               ...)
{
  va_list args;

  va_start (args, format);
  g_ptr_array_add (list, g_strdup_vprintf (format, args));
  va_end (args);
}

static char *
join (GPtrArray *list)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < list->len; i++)
    {
      if (i > 0)
        g_string_append (out, "; ");
      g_string_append (out, list->pdata[i]);
    }

  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
set_errno_error (GError     **error,
                 int          saved_errno,
                 const char  *what)
{
  g_set_error (error, AFORK_ERROR, AFORK_ERROR_SANDBOX,
               /* TRANSLATORS: the first %s is a step of building a sandbox,
                * the second the system's explanation */
               _("Cannot build the sandbox: %s failed: %s"),
               what, g_strerror (saved_errno));
}


/* Resource limits */

static guint   cpu_limit_seconds;
static pid_t   cpu_limit_pid;

/* Lowers @resource to @soft and @hard, never above what is allowed now. */
static gboolean
lower_limit (int      resource,
             rlim_t   soft,
             rlim_t   hard,
             GError **error)
{
  struct rlimit lim;

  if (getrlimit (resource, &lim) != 0)
    {
      set_errno_error (error, errno, "getrlimit");
      return FALSE;
    }

  if (lim.rlim_max != RLIM_INFINITY && hard > lim.rlim_max)
    hard = lim.rlim_max;
  soft = MIN (soft, hard);
  lim.rlim_cur = soft;
  lim.rlim_max = hard;

  if (setrlimit (resource, &lim) != 0)
    {
      set_errno_error (error, errno, "setrlimit");
      return FALSE;
    }

  return TRUE;
}

/* Gives the calling process cpu_limit_seconds more of CPU time: SIGXCPU
 * at the limit, SIGKILL a second later. */
static void
cpu_limit_from_now (void)
{
  struct rusage usage;
  rlim_t used = 0;

  if (cpu_limit_seconds == 0)
    return;

  if (getpid () == cpu_limit_pid && getrusage (RUSAGE_SELF, &usage) == 0)
    used = (rlim_t) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1);

  lower_limit (RLIMIT_CPU, used + cpu_limit_seconds, used + cpu_limit_seconds + 1, NULL);
}

/* In every process forked after the sandbox: its CPU time starts at 0. */
static void
cpu_limit_atfork_child (void)
{
  cpu_limit_pid = 0;
  cpu_limit_from_now ();
}

static gboolean
apply_limits (const AforkWireSandbox  *sandbox,
              GError                 **error)
{
  static gboolean atfork_registered;

  if (sandbox->memory_limit > 0)
    {
      rlim_t bytes = (rlim_t) MIN (sandbox->memory_limit, (guint64) RLIM_INFINITY - 1);

      if (!lower_limit (RLIMIT_AS, bytes, bytes, error))
        return FALSE;
    }

  if (sandbox->cpu_limit > 0)
    {
      /* A second sandbox can only tighten. */
      if (cpu_limit_seconds == 0 || sandbox->cpu_limit < cpu_limit_seconds)
        cpu_limit_seconds = sandbox->cpu_limit;
      cpu_limit_pid = getpid ();

      if (!atfork_registered)
        {
          int res = pthread_atfork (NULL, NULL, cpu_limit_atfork_child);

          if (res != 0)
            {
              set_errno_error (error, res, "pthread_atfork");
              return FALSE;
            }
          atfork_registered = TRUE;
        }
    }

  return TRUE;
}

void
_afork_server_sandbox_enter_run (void)
{
  if (cpu_limit_seconds > 0 && getpid () == cpu_limit_pid)
    cpu_limit_from_now ();
}

/* Landlock */

static gboolean
landlock_add_path (int                          ruleset,
                   guint64                      handled,
                   const AforkWireSandboxPath  *p,
                   GError                     **error)
{
  g_autofree char *path = g_strndup ((const char *) p->path.data, p->path.len);
  LlPathBeneathAttr attr = { 0 };
  struct stat st;
  int saved_errno;
  long res;

  attr.allowed_access = (p->access == AFORK_WIRE_SANDBOX_WRITE ? LL_ACCESS_WRITE : LL_ACCESS_READ);
  attr.parent_fd = open (path, O_PATH | O_CLOEXEC);
  if (attr.parent_fd < 0)
    {
      saved_errno = errno;
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_SANDBOX,
                   /* TRANSLATORS: the first %s is a path, the second the system's
                    * explanation */
                   _("Cannot build the sandbox: the allowed path “%s” cannot be opened: %s"),
                   path, g_strerror (saved_errno));
      return FALSE;
    }

  if (fstat (attr.parent_fd, &st) == 0 && !S_ISDIR (st.st_mode))
    attr.allowed_access &= LL_ACCESS_FILE;
  attr.allowed_access &= handled;

  res = syscall (__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &attr, (guint32) 0);
  saved_errno = errno;
  close (attr.parent_fd);

  if (res != 0)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_SANDBOX,
                   _("Cannot build the sandbox: Landlock refused the path “%s”: %s"),
                   path, g_strerror (saved_errno));
      return FALSE;
    }

  return TRUE;
}

static gboolean
apply_landlock (const AforkWireSandbox  *sandbox,
                guint                    abi,
                GError                 **error)
{
  LlRulesetAttr attr = { 0 };
  size_t attr_size;
  int ruleset;

  abi = MIN (abi, LL_ABI_KNOWN);

  attr.handled_access_fs = ll_fs_rights (abi);
  attr_size = sizeof attr.handled_access_fs;
  if (abi >= 4)
    {
      if (!(sandbox->flags & AFORK_WIRE_SANDBOX_NETWORK))
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
      attr_size += sizeof attr.handled_access_net;
    }
  if (abi >= 6)
    {
      attr.scoped = LL_SCOPE_SIGNAL;
      if (!(sandbox->flags & AFORK_WIRE_SANDBOX_NETWORK))
        attr.scoped |= LL_SCOPE_ABSTRACT_UNIX_SOCKET;
      attr_size += sizeof attr.scoped;
    }

  ruleset = (int) syscall (__NR_landlock_create_ruleset, &attr, attr_size, (guint32) 0);
  if (ruleset < 0)
    {
      set_errno_error (error, errno, "landlock_create_ruleset");
      return FALSE;
    }

  for (guint i = 0; i < sandbox->paths->len; i++)
    if (!landlock_add_path (ruleset, attr.handled_access_fs,
                            &g_array_index (sandbox->paths, AforkWireSandboxPath, i), error))
      {
        close (ruleset);
        return FALSE;
      }

  if (syscall (__NR_landlock_restrict_self, ruleset, (guint32) 0) != 0)
    {
      int saved_errno = errno;

      close (ruleset);
      set_errno_error (error, saved_errno, "landlock_restrict_self");
      return FALSE;
    }

  close (ruleset);

  return TRUE;
}

/* seccomp */

#ifdef HAVE_LIBSECCOMP

/* The deny-list, in the spirit of Flatpak's and of GNOME's thumbnailer
 * filter: what a decoder has no business doing, refused with an error
 * number so that a library that probes degrades cleanly. A name the
 * architecture does not have is skipped. */
static const struct
{
  const char *name;
  int         errnum;
} deny_list[] = {
  /* Reaching into other processes. */
  { "ptrace", EPERM },
  { "process_vm_readv", EPERM },
  { "process_vm_writev", EPERM },
  { "pidfd_getfd", EPERM },
  /* Mounting, with the old and the new mount API, and changing root. */
  { "mount", EPERM },
  { "umount", EPERM },
  { "umount2", EPERM },
  { "pivot_root", EPERM },
  { "chroot", EPERM },
  { "open_tree", EPERM },
  { "move_mount", EPERM },
  { "fsopen", EPERM },
  { "fsconfig", EPERM },
  { "fsmount", EPERM },
  { "fspick", EPERM },
  { "mount_setattr", EPERM },
  /* Namespaces: entering or making them (clone is filtered on its flags
   * below). */
  { "unshare", EPERM },
  { "setns", EPERM },
  /* clone3 passes its flags in memory, which a filter cannot read:
   * ENOSYS makes the C library fall back to clone. */
  { "clone3", ENOSYS },
  /* Changing the kernel, or watching it closely. */
  { "kexec_load", EPERM },
  { "kexec_file_load", EPERM },
  { "init_module", EPERM },
  { "finit_module", EPERM },
  { "delete_module", EPERM },
  { "bpf", EPERM },
  { "perf_event_open", EPERM },
  /* Keyrings are not confined to the process. */
  { "add_key", EPERM },
  { "keyctl", EPERM },
  { "request_key", EPERM },
  /* io_uring performs operations (sockets among them) this filter never
   * sees. */
  { "io_uring_setup", EPERM },
  { "io_uring_enter", EPERM },
  { "io_uring_register", EPERM },
  /* Faults handled in user space make races in the kernel easy to win. */
  { "userfaultfd", EPERM },
  /* A handle is a path without a path check. */
  { "open_by_handle_at", EPERM },
  /* The state of the whole system. */
  { "reboot", EPERM },
  { "swapon", EPERM },
  { "swapoff", EPERM },
  { "syslog", EPERM },
  { "acct", EPERM },
  { "quotactl", EPERM },
  { "settimeofday", EPERM },
  { "clock_settime", EPERM },
  { "clock_adjtime", EPERM },
  { "adjtimex", EPERM },
};

/* Namespace flags refused to clone (CLONE_NEWTIME shares its bit with the
 * exit signal there, and only unshare takes it). */
static const guint64 clone_namespace_flags[] = {
  CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
  CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

/* Terminal requests that inject input into another program. */
static const guint64 denied_ioctls[] = { TIOCSTI, TIOCLINUX };

#if defined(__s390__) || defined(__CRIS__)
# define CLONE_FLAGS_ARG 1   /* clone (stack, flags, …) there */
#else
# define CLONE_FLAGS_ARG 0
#endif

/* Names the step that failed, for the message. */
static int
filter_failed (const char **what,
               const char  *step,
               int          res)
{
  *what = step;
  return res;
}

/* Adds the rules of @sandbox to @ctx. Returns 0, or a negative errno
 * value with the step that failed in @what. */
static int
add_filter_rules (scmp_filter_ctx          ctx,
                  const AforkWireSandbox  *sandbox,
                  const char             **what)
{
  int res;

  /* A system call of another architecture (int 0x80 in a 64-bit
   * process) would escape rules written for this one: refuse them all,
   * without killing. */
  if ((res = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO (ENOSYS))) < 0)
    return filter_failed (what, "seccomp_attr_set", res);

  for (gsize i = 0; i < G_N_ELEMENTS (deny_list); i++)
    {
      int nr = seccomp_syscall_resolve_name (deny_list[i].name);

      if (nr == __NR_SCMP_ERROR)
        continue;
      res = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (deny_list[i].errnum), nr, 0);
      /* A pseudo-syscall libseccomp cannot place on this architecture. */
      if (res < 0 && res != -EDOM && res != -EOPNOTSUPP)
        return filter_failed (what, deny_list[i].name, res);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (clone_namespace_flags); i++)
    {
      guint64 flag = clone_namespace_flags[i];

      res = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (clone), 1,
                              SCMP_CMP (CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ, flag, flag));
      if (res < 0)
        return filter_failed (what, "clone", res);
    }

  /* Only PER_LINUX, what every process has; a filter cannot compare one
   * argument twice, so the query (0xffffffff) is refused too, as in
   * Flatpak's filter. */
  res = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (personality), 1,
                          SCMP_A0 (SCMP_CMP_NE, PER_LINUX));
  if (res < 0)
    return filter_failed (what, "personality", res);

  for (gsize i = 0; i < G_N_ELEMENTS (denied_ioctls); i++)
    {
      res = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (ioctl), 1,
                              SCMP_A1 (SCMP_CMP_MASKED_EQ, 0xffffffffu, denied_ioctls[i]));
      if (res < 0)
        return filter_failed (what, "ioctl", res);
    }

  /* Without the network, a socket is a unix socket. */
  if (!(sandbox->flags & AFORK_WIRE_SANDBOX_NETWORK))
    {
      res = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 1,
                              SCMP_A0 (SCMP_CMP_NE, AF_UNIX));
      if (res < 0)
        return filter_failed (what, "socket", res);
    }

  if (!(sandbox->flags & AFORK_WIRE_SANDBOX_EXEC))
    {
      if ((res = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (execve), 0)) < 0 ||
          (res = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (execveat), 0)) < 0)
        return filter_failed (what, "execve", res);
    }

  return 0;
}

/* libseccomp makes and frees many blocks while it builds a filter. Done
 * in the template, that leaves its heap in pieces, and every process
 * forked from it then writes to more pages of it (each a copy): a fifth
 * of the rate of forks, measured on a paravirtualised machine. So the
 * filter is built by a short-lived child, and only its instructions come
 * back, into static storage (one more than a program may have, so that
 * a longer one shows). */
static struct sock_filter filter_insns[BPF_MAXINSNS + 1];

/* Writes the program to @fd and exits 0; or exits with the errno value
 * of the step that failed, after writing the step's name. */
G_GNUC_NORETURN static void
build_filter_child (int                     fd,
                    const AforkWireSandbox *sandbox)
{
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  const char *what = "seccomp_init";
  int res = ctx != NULL ? add_filter_rules (ctx, sandbox, &what) : -ENOMEM;

  if (res < 0)
    {
      /* Shorter than PIPE_BUF: one write takes it all. */
      if (write (fd, what, strlen (what)) < 0)
        { /* the parent reports the errno value alone */ }
      _exit (MIN (-res, 255));
    }

  res = seccomp_export_bpf (ctx, fd);
  _exit (res < 0 ? MIN (-res, 255) : 0);
}

static gboolean
apply_seccomp (const AforkWireSandbox  *sandbox,
               gboolean                 threads,
               GError                 **error)
{
  struct sock_fprog prog = { 0 };
  gsize len = 0;
  int fds[2];
  int status;
  pid_t pid;

  if (pipe2 (fds, O_CLOEXEC) != 0)
    {
      set_errno_error (error, errno, "pipe2");
      return FALSE;
    }

  pid = fork ();
  if (pid < 0)
    {
      int saved_errno = errno;

      close (fds[0]);
      close (fds[1]);
      set_errno_error (error, saved_errno, "fork");
      return FALSE;
    }
  if (pid == 0)
    {
      close (fds[0]);
      build_filter_child (fds[1], sandbox);
    }

  /* To the end of the stream, or until the buffer is full: closing the
   * pipe then ends a child that would write more. */
  close (fds[1]);
  while (len < sizeof filter_insns)
    {
      gssize res = read (fds[0], (char *) filter_insns + len, sizeof filter_insns - len);

      if (res < 0 && errno == EINTR)
        continue;
      if (res <= 0)
        break;
      len += (gsize) res;
    }
  close (fds[0]);

  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      {
        set_errno_error (error, errno, "waitpid");
        return FALSE;
      }

  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      char what[64];
      gsize n = MIN (len, sizeof what - 1);

      memcpy (what, filter_insns, n);
      what[n] = '\0';
      set_errno_error (error, WIFEXITED (status) ? WEXITSTATUS (status) : EPIPE,
                       n > 0 ? what : "seccomp_export_bpf");
      return FALSE;
    }
  if (len == 0 || len % sizeof (struct sock_filter) != 0 ||
      len > BPF_MAXINSNS * sizeof (struct sock_filter))
    {
      set_errno_error (error, EINVAL, "seccomp_export_bpf");
      return FALSE;
    }

  prog.len = (unsigned short) (len / sizeof (struct sock_filter));
  prog.filter = filter_insns;
  /* NO_NEW_PRIVS is set already; other threads get the filter too. */
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER,
               threads ? SECCOMP_FILTER_FLAG_TSYNC : 0, &prog) != 0)
    {
      set_errno_error (error, errno, "seccomp");
      return FALSE;
    }

  return TRUE;
}

#endif /* HAVE_LIBSECCOMP */

static gboolean
kernel_has_seccomp (void)
{
  /* EINVAL: the kernel was built without seccomp. */
  return prctl (PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
}

gboolean
_afork_server_sandbox_apply (const AforkWireSandbox  *sandbox,
                             GError                 **error)
{
  gboolean best_effort = (sandbox->flags & AFORK_WIRE_SANDBOX_BEST_EFFORT) != 0;
  guint required_abi = MAX (sandbox->landlock_abi, 1);
  guint abi = landlock_abi ();
  /* Landlock and seccomp confine the calling thread only: the processes
   * forked from it are single-threaded and confined all the same, but
   * other threads of the template itself would not be. */
  guint threads = _afork_count_threads ();
  gboolean use_seccomp = FALSE;
  g_autoptr(GError) local_error = NULL;
  Shortfall shortfall;

  shortfall.missing = g_ptr_array_new_with_free_func (g_free);
  shortfall.weaker = g_ptr_array_new_with_free_func (g_free);

  /* What the kernel lacks is known before anything is built: a sandbox
   * that cannot be enforced fails before it changes the process. */
  if (threads > 1)
    shortfall_add (shortfall.missing,
                   _("the process runs %u threads, and Landlock confines only the calling one"),
                   threads);

  if (abi == 0)
    shortfall_add (shortfall.missing, _("Landlock (absent or disabled in this kernel)"));
  else if (abi < required_abi)
    shortfall_add (shortfall.missing,
                   _("Landlock ABI %u (this kernel offers ABI %u)"), required_abi, abi);

  if (abi > 0)
    {
      if (abi < 3)
        shortfall_add (shortfall.weaker, "Landlock truncation rights (ABI 3)");
      if (abi < 4 && !(sandbox->flags & AFORK_WIRE_SANDBOX_NETWORK))
        shortfall_add (shortfall.weaker, "Landlock TCP rules (ABI 4)");
      if (abi < 5)
        shortfall_add (shortfall.weaker, "Landlock device ioctl rights (ABI 5)");
      if (abi < 6)
        shortfall_add (shortfall.weaker, "Landlock scoping of abstract unix sockets and signals (ABI 6)");
    }

#ifdef HAVE_LIBSECCOMP
  if (kernel_has_seccomp ())
    use_seccomp = TRUE;
  else
    shortfall_add (shortfall.missing, _("seccomp (absent in this kernel)"));
#else
  (void) kernel_has_seccomp;
  shortfall_add (shortfall.missing, _("seccomp (afork was built without libseccomp)"));
#endif

  if (shortfall.missing->len > 0 && !best_effort)
    {
      g_autofree char *missing = join (shortfall.missing);

      g_set_error (&local_error, AFORK_ERROR, AFORK_ERROR_SANDBOX,
                   /* TRANSLATORS: %s lists the layers of a sandbox the kernel
                    * cannot enforce, separated by semicolons */
                   _("The sandbox cannot be enforced, it lacks: %s"), missing);
      goto out;
    }

  if (shortfall.missing->len > 0 || shortfall.weaker->len > 0)
    {
      g_autofree char *missing = join (shortfall.missing);
      g_autofree char *weaker = join (shortfall.weaker);

      g_debug ("Sandbox of process %d applied without: %s%s%s", (int) getpid (),
               missing, missing[0] != '\0' && weaker[0] != '\0' ? "; " : "", weaker);
    }

  if (!apply_limits (sandbox, &local_error))
    goto out;

  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    {
      set_errno_error (&local_error, errno, "PR_SET_NO_NEW_PRIVS");
      goto out;
    }

  if (abi > 0 && !apply_landlock (sandbox, abi, &local_error))
    goto out;

#ifdef HAVE_LIBSECCOMP
  if (use_seccomp && !apply_seccomp (sandbox, threads > 1, &local_error))
    goto out;
#else
  (void) use_seccomp;
#endif

out:
  g_ptr_array_unref (shortfall.missing);
  g_ptr_array_unref (shortfall.weaker);

  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  return TRUE;
}
