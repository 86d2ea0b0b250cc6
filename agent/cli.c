#include "agent/cli.h"

#include <stdio.h>
#include <string.h>

int ag_cli_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        printf("albd %s\n", ALBD_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: albd version\n");
    return 64;
}
