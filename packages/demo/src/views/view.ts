/** A mounted screen of the app. */
export interface View {
  /** Unmounts the screen and releases what it holds (subscriptions, the engine). */
  destroy(): void | Promise<void>;
}
