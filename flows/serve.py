"""Serve the pipeline's deployments so that the Prefect UI can trigger them.

    prefect server start            # terminal 1: API and UI at http://127.0.0.1:4200
    python -m flows.serve           # terminal 2: registers and serves the deployments

Then in the UI, Deployments -> ``pipeline/full`` or ``stage/one`` -> Run. Or from a shell:
``prefect deployment run pipeline/full`` / ``prefect deployment run stage/one -p name=pseudo4d`` /
``prefect deployment run video_to_4d/one -p video=/path/to/my.mp4``.
"""

from __future__ import annotations

from prefect import serve

from flows.pipeline import pipeline, stage, video_to_4d


def main() -> None:
    serve(
        pipeline.to_deployment(name="full", description="Reproduce the whole DVC pipeline (only what changed)."),
        stage.to_deployment(name="one", parameters={"name": "pseudo4d"},
                            description="Reproduce one stage; set `name`, and `force` to rerun it anyway."),
        video_to_4d.to_deployment(name="one", parameters={"video": "/usr/share/doc/opencv-doc/examples/data/vtest.avi"},
                                  description="A 4D scene from one video or image: set `video` to a file path."),
    )


if __name__ == "__main__":
    main()
