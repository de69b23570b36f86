// Written for this book (not from npm); loaded between widgets/require.js and widgets/embed-amd.js
// (_config.yml, nb_ipywidgets_js).

// embed-amd.js finds its Font Awesome fonts next to the AMD module "@jupyter-widgets/html-manager/dist/...",
// which require.js would place relative to the page; map it to _static/widgets/, where the fonts are.
require.config({ paths: { "@jupyter-widgets/html-manager/dist": new URL("widgets", document.currentScript.src).href } });

// ipywidgets typesets the math in widget labels with the MathJax 2 call MathJax.Hub.Queue(["Typeset", Hub, el]);
// the book loads MathJax 3 (deferred, so it is there at DOMContentLoaded): translate that call.
document.addEventListener("DOMContentLoaded", () => {
  const mj = window.MathJax;
  if (mj && mj.startup && !mj.Hub) {
    mj.Hub = {
      Queue: ([, , element]) => {
        mj.startup.promise = mj.startup.promise.then(() => mj.typesetPromise([element]));
      },
    };
  }
});
