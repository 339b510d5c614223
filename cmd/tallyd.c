/* placeholder, replaced by the daemon */
#include <stdio.h>
int main(void) { fprintf(stderr, "tallyd: not built yet\n"); return 2; }
