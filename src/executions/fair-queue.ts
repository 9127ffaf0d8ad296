/**
 * Waiting executions, served fairly across users rather than first come first
 * served: the user with the fewest running executions goes first, ties in
 * round-robin order, so a user with a hundred queued jobs cannot starve a user
 * with one. Within one user, order is kept.
 */
export interface Queued {
  userId: string;
}

export class FairQueue<T extends Queued> {
  /** Map order is the rotation: the user at the front is served next. */
  private readonly byUser = new Map<string, T[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  sizeOf(userId: string): number {
    return this.byUser.get(userId)?.length ?? 0;
  }

  users(): string[] {
    return [...this.byUser.keys()];
  }

  push(item: T): void {
    const list = this.byUser.get(item.userId);
    if (list) list.push(item);
    else this.byUser.set(item.userId, [item]);
    this.count++;
  }

  /**
   * Takes the oldest item of the user with the lowest `rank` (e.g. how many
   * executions they already run) among those whose oldest item `canStart`
   * accepts; ties go in rotation order, and the served user moves to the back.
   */
  take(canStart: (item: T) => boolean, rank: (userId: string) => number = () => 0): T | undefined {
    let best: { userId: string; list: T[]; rank: number } | undefined;
    for (const [userId, list] of this.byUser) {
      const head = list[0];
      if (!head || !canStart(head)) continue;
      const r = rank(userId);
      if (!best || r < best.rank) best = { userId, list, rank: r };
    }
    if (!best) return undefined;
    const head = best.list.shift()!;
    this.count--;
    this.byUser.delete(best.userId);
    if (best.list.length > 0) this.byUser.set(best.userId, best.list);
    return head;
  }

  remove(item: T): boolean {
    const list = this.byUser.get(item.userId);
    const index = list?.indexOf(item) ?? -1;
    if (!list || index < 0) return false;
    list.splice(index, 1);
    this.count--;
    if (list.length === 0) this.byUser.delete(item.userId);
    return true;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (const list of this.byUser.values()) yield* list;
  }
}
