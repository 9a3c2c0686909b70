/*
 * ns.h: what ns.c (the init, which serves file requests inside its
 * workspace) and ns-file.c (the worker's end of that service) share.
 */
#ifndef NS_H
#define NS_H

#define NS_PATH_MAX	4096

/* A file request to the init (the path's bytes, NUL ended, end it). */
struct ns_freq {
	uint32_t seq;
	int	 flags;		/* of open(2) */
	int	 mode;
	int	 how;		/* NS_FILE_MKDIRS, NS_FILE_WRITABLE */
	char	 path[NS_PATH_MAX];
};

/* Its answer, with the descriptor opened unless err. */
struct ns_fans {
	uint32_t seq;
	int	 err;
	int	 why;		/* NS_WHY_* */
};

/* ns-file.c */
struct ns_files *ns_files_create(struct ns_init *, int);
void	 ns_files_free(struct ns_files *);

#endif
