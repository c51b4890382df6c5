/**
 * Who may call the functions: Clerk session tokens minted with the `convex`
 * JWT template. Set `CLERK_JWT_ISSUER_DOMAIN` on the deployment
 * (`npx convex env set CLERK_JWT_ISSUER_DOMAIN https://<your-app>.clerk.accounts.dev`).
 */
export default {
  providers: [
    {
      domain: process.env.CLERK_JWT_ISSUER_DOMAIN,
      applicationID: 'convex',
    },
  ],
};
