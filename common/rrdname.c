/*
 * rrdname.c: file names for RRD files (rrdname.h).
 */
#include "rrdname.h"

#include <errno.h>
#include <stdio.h>

int rrd_name_escape(char *out, size_t len, const char *in)
{
	size_t o = 0;
	for (size_t i = 0; in[i]; i++) {
		unsigned char c = (unsigned char)in[i];
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    c == '_' || c == '-' || (c == '.' && i > 0);
		if (o + (plain ? 1 : 3) >= len)
			return -ENAMETOOLONG;
		if (plain) {
			out[o++] = (char)c;
		} else {
			snprintf(out + o, 4, "%%%02X", c);
			o += 3;
		}
	}
	if (o == 0) {
		if (len < 2)
			return -ENAMETOOLONG;
		out[o++] = '_';
	}
	out[o] = '\0';
	return 0;
}
