#!/usr/bin/perl
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Processes per second of AnyEvent::Fork, measured like afork-bench does:
# each process runs CORE::exit at once and the parent waits for the end of
# its socket.
#
#   anyevent-fork-bench.pl new|new_exec SECONDS REPETITIONS
#
# Prints "rate R" for each repetition; exits with status 77 and a reason
# when AnyEvent::Fork or EV is not installed.

use strict;
use warnings;

use Time::HiRes ();

my ($mode, $seconds, $reps) = @ARGV;

unless (defined $reps && ($mode eq 'new' || $mode eq 'new_exec')) {
   print STDERR "usage: $0 new|new_exec SECONDS REPETITIONS\n";
   exit 2;
}

unless (eval { require EV; require AnyEvent; require AnyEvent::Fork; 1 }) {
   print "AnyEvent::Fork or EV is not installed (libanyevent-fork-perl, libev-perl)\n";
   exit 77;
}

$| = 1;

sub one_process {
   my $done = AE::cv ();
   my $proc = $mode eq 'new' ? AnyEvent::Fork->new : AnyEvent::Fork->new_exec;
   my $watcher;

   $proc->run ("CORE::exit", sub {
      my ($fh) = @_;

      $watcher = AE::io ($fh, 0, sub {
         my $len = sysread $fh, my $buf, 256;

         return if $len || (!defined $len && ($!{EAGAIN} || $!{EINTR}));

         undef $watcher;
         $done->send;
      });
   });

   $done->recv;
}

# Warm up: the first `new` starts the template.
one_process for 1 .. 3;

for (1 .. $reps) {
   my $start = Time::HiRes::time;
   my ($n, $elapsed) = (0, 0);

   do {
      one_process;
      ++$n;
      $elapsed = Time::HiRes::time - $start;
   } while ($elapsed < $seconds || $n < 3);

   printf "rate %.3f\n", $n / $elapsed;
}
