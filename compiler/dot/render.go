package dot

import (
	"bytes"
	"context"
	"fmt"

	graphviz "github.com/goccy/go-graphviz"
	"github.com/goccy/go-graphviz/gvc"

	"github.com/fsmc/fsmc/internal/graphvizcache"
)

// go-graphviz compiled its WebAssembly in its init, before this
// package's, with graphvizcache's TMPDIR where needed; the environment
// goes back as it was.
func init() { graphvizcache.Restore() }

// Render lays out DOT text with Graphviz's dot engine and renders it as
// "svg" or "png".
func Render(ctx context.Context, dotText []byte, format string) ([]byte, error) {
	var gvFormat graphviz.Format
	switch format {
	case "svg":
		gvFormat = graphviz.SVG
	case "png":
		gvFormat = graphviz.PNG
	default:
		return nil, fmt.Errorf("cannot render %q (want svg or png)", format)
	}
	plugins, err := pngPlugins(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting graphviz: %w", err)
	}
	gv, err := graphviz.NewWithPlugins(ctx, plugins...)
	if err != nil {
		return nil, fmt.Errorf("starting graphviz: %w", err)
	}
	defer gv.Close()
	graph, err := graphviz.ParseBytes(dotText)
	if err != nil {
		return nil, fmt.Errorf("graphviz cannot read the DOT: %w", err)
	}
	defer graph.Close()
	var out bytes.Buffer
	if err := gv.Render(ctx, graph, gvFormat, &out); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", format, err)
	}
	return out.Bytes(), nil
}

// pngPlugins is go-graphviz's PNG renderer with its shape drawing
// mended (SVG does not go through it). Through go-graphviz v0.2.9 the
// renderer is told "filled" for every shape, and either fills a shape or
// outlines it, never both. Graphviz itself fills only a node's first
// periphery, expects a filled shape to be outlined as well, and never
// fills an edge's spline. So mendedShapes strokes edge splines, and
// within a node fills and outlines the first closed shape (ellipse,
// polygon or the curve of a rounded box) and only
// outlines the further ones (the outer ring of a double circle).
func pngPlugins(ctx context.Context) ([]gvc.Plugin, error) {
	def, err := gvc.PNGRenderPlugin(ctx)
	if err != nil {
		return nil, err
	}
	render, err := gvc.NewRenderPlugin(ctx, "png", &mendedShapes{RenderEngine: def.RenderEngine()})
	if err != nil {
		return nil, err
	}
	device, err := gvc.PNGDevicePlugin(ctx)
	if err != nil {
		return nil, err
	}
	return []gvc.Plugin{render, device}, nil
}

type mendedShapes struct {
	gvc.RenderEngine
	peripheries int // closed shapes drawn so far for the current node
}

func (s *mendedShapes) BeginNode(ctx context.Context, job *gvc.Job) error {
	s.peripheries = 0
	return s.RenderEngine.BeginNode(ctx, job)
}

// draw fills and outlines a node's first closed shape, outlines its
// further ones, and leaves other objects' shapes as asked.
func (s *mendedShapes) draw(job *gvc.Job, filled bool, shape func(filled bool) error) error {
	if job.Object().Type() == gvc.NodeObjectType {
		s.peripheries++
		filled = filled && s.peripheries == 1
	}
	if filled {
		if err := shape(true); err != nil {
			return err
		}
		if job.Object().Pen() == gvc.PenNone {
			return nil
		}
	}
	return shape(false)
}

func (s *mendedShapes) BezierCurve(ctx context.Context, job *gvc.Job, points []*gvc.PointFloat, filled bool) error {
	if job.Object().Type() == gvc.EdgeObjectType {
		return s.RenderEngine.BezierCurve(ctx, job, points, false)
	}
	return s.draw(job, filled, func(f bool) error { return s.RenderEngine.BezierCurve(ctx, job, points, f) })
}

func (s *mendedShapes) Ellipse(ctx context.Context, job *gvc.Job, points []*gvc.PointFloat, filled bool) error {
	return s.draw(job, filled, func(f bool) error { return s.RenderEngine.Ellipse(ctx, job, points, f) })
}

func (s *mendedShapes) Polygon(ctx context.Context, job *gvc.Job, points []*gvc.PointFloat, filled bool) error {
	return s.draw(job, filled, func(f bool) error { return s.RenderEngine.Polygon(ctx, job, points, f) })
}
