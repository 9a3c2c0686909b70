/*
 * worker-file.h: what worker-file.c (put, stat, the entry points) and
 * worker-file-get.c (get) share: a transfer and how it fails.
 */
#ifndef WORKER_FILE_H
#define WORKER_FILE_H

#define FILE_LEFT_UNKNOWN	UINT64_MAX	/* read to EOF */
#define FILE_HASH_AHEAD		(4 * 1024 * 1024)	/* max ahead of hash */

struct file_xfer {
	const char	*op;		/* "put" or "get", for messages */
	char		*path;		/* as asked */
	char		*dir;		/* put: its folder */
	char		*base;		/* put: its last component */
	int		 dirfd;
	int		 fd;
	char		*temp;		/* put: named temp file in dir */
	uint8_t		*wbuf;		/* put: received, not yet written */
	size_t		 wlen;
	int		 unnamed;	/* put: fd is an O_TMPFILE */
	mode_t		 mode;
	int		 mode_given;	/* put: else an existing file's mode */
	uint64_t	 size;		/* put: written; get: file size */
	uint64_t	 expect;	/* put: announced size (preallocated) */
	uint64_t	 synced;	/* put: writeback started up to */
	uint64_t	 pos;		/* get: next offset to read */
	uint64_t	 left;		/* get: bytes still to read */
	uint64_t	 sent;		/* get: bytes read and sent */
	uint64_t	 max;		/* get: inline limit, 0 for none */
	struct hash	*hash;		/* SHA-256 of the bytes, see hash.c */
	struct event	*ev;		/* get: read more */
	int		 done;		/* finished or failed */

	/* In a workspace: the open asked of its init, until it answers. */
	struct ns_file	*req;
	uint8_t		*pend;		/* put: input that came meanwhile */
	size_t		 npend;
	uint64_t	 offset;	/* get: as asked */
	uint64_t	 length;
	int		 isdir;		/* put: the path names a folder */
};

void	 file_close(struct file_xfer *);
void	 file_free(struct job *);
void	 file_forget(struct job *);
void	 file_end_hashed(struct job *);
void	 file_fail(struct job *, const char *, int, const char *, ...)
	     __attribute__((format(printf, 4, 5)));
void	 file_fail_outside(struct job *);
void	 file_fail_errno(struct job *, int, const char *);
void	 file_fail_ns(struct job *, int, int, const char *);

/* worker-file-get.c */
extern const struct job_ops file_get_ops;
void	 file_get_open(struct job *, struct file_xfer *, json_t *);

#endif
