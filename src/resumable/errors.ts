/** A resumable stream that ended with an error: its producer's, or a follower's finding that the producer was gone. */
export class ResumableStreamError extends Error {
  override name = 'ResumableStreamError';

  constructor(
    readonly streamId: string,
    readonly reason: string,
  ) {
    super(`Resumable stream ${JSON.stringify(streamId)} failed: ${reason}`);
  }
}
