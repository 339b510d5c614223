/*
 * libvirt_loop.h: the event loop the libvirt collector gives libvirt
 * (virEventRegisterImpl), on a thread of its own.
 *
 * Why not libvirt's default loop (virEventRegisterDefaultImpl, GLib): a
 * connection's socket is watched by the loop so that events and keepalives
 * are read between calls. Every call the collector makes takes the socket
 * from the loop for its duration and gives it back (libvirt's client turns
 * the watch off and on again), and the default loop answers each change by
 * waking its thread, which then contends for the connection's lock: about
 * fifteen context switches per call on a real host, more than the call's
 * own work (docs/libvirt.md, "What it costs the host"). Here a watch is an
 * epoll registration changed with epoll_ctl() by whichever thread changes
 * it: the kernel applies the change to the loop's wait at once, so turning
 * a watch off or on (with nothing to read) wakes nobody. The loop thread
 * is woken (an eventfd) only when a timer is due earlier than it sleeps,
 * or something it must free was removed.
 *
 * libvirt's contract (libvirt-event.h) kept: callbacks run on the loop
 * thread with no lock held, so they may add, update and remove watches and
 * timers; a removed watch's or timer's callback is not called again once
 * removeHandle/removeTimeout returned (except one already running), and its
 * free function is called later from the loop thread, never from inside a
 * remove. Timers: -1 off, 0 due at every iteration, N ms periodic from the
 * time it was set or last fired.
 */
#ifndef TALLY_LIBVIRT_LOOP_H
#define TALLY_LIBVIRT_LOOP_H

#include <stdint.h>

/* Register the loop with libvirt and start its thread, once per process
 * (later calls return the first one's result). 0, or -errno (libvirt then
 * has no event loop: no lifecycle events, no keepalive). */
int lvloop_start(void);

/* Iterations of the loop since it started (each return from its wait):
 * tests count wake-ups with it. */
uint64_t lvloop_iterations(void);

#endif
