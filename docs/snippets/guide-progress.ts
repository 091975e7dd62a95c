import { Effect, Schema } from "effect"
import { Job } from "effect-jobs"

const ResizeImages = Job.make("resize-images", {
  args: Schema.Struct({ urls: Schema.Array(Schema.String) }),
})

const resize = (_url: string) => Effect.void

export const resizeImages = ResizeImages.handler(({ args }) =>
  Effect.forEach(
    args.urls,
    (url, i) =>
      resize(url).pipe(
        Effect.zipRight(Job.log(`resized ${url}`)),
        Effect.zipRight(Job.progress(((i + 1) / args.urls.length) * 100, `${i + 1} of ${args.urls.length}`)),
      ),
    { discard: true },
  ),
)
