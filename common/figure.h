/*
 * figure.h: a number a collector keeps about itself (events seen, tails
 * left open), handed to the daemon between reads and served at /metrics
 * as tally_<collector>_<name> (with _total for a counter). A value type:
 * name, help and type are the collector's static strings.
 */
#ifndef TALLY_FIGURE_H
#define TALLY_FIGURE_H

#define COLLECTOR_MAX_FIGURES 8

struct collector_figure {
	const char *name;        /* "tail_open_seconds": [a-z_], no prefix */
	const char *help;
	const char *type;        /* "counter" or "gauge" */
	double value;            /* in the base unit its name says */
};

#endif
