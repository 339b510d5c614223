/* placeholder, replaced by the usage CLI */
#include <stdio.h>
int main(void) { fprintf(stderr, "tally: not built yet\n"); return 2; }
